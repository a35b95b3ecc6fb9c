"""Builds augcore._C by handing the work to CMakeLists.txt (the one build definition).

Environment:
  AUGCORE_CUDA=AUTO|ON|OFF      CUDA kernels (default AUTO: built when nvcc and a CUDA torch are present)
  AUGCORE_CUDA_ARCHS="80;90"    CUDA architectures
  CUDA_HOME                     CUDA toolkit (default /usr/local/cuda when it exists)
  AUGCORE_BUILD_DIR             CMake build folder (default build/); reused, so rebuilds are incremental
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


class CMakeExtension(Extension):
    def __init__(self, name):
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        out_dir = Path(self.get_ext_fullpath(ext.name)).resolve().parent
        build_dir = Path(os.environ.get("AUGCORE_BUILD_DIR", ROOT / "build"))
        build_dir.mkdir(parents=True, exist_ok=True)
        args = [
            f"-DCMAKE_LIBRARY_OUTPUT_DIRECTORY={out_dir}",
            f"-DPython3_EXECUTABLE={sys.executable}",
            f"-DAUGCORE_CUDA={os.environ.get('AUGCORE_CUDA', 'AUTO')}",
            f"-DAUGCORE_CUDA_ARCHS={os.environ.get('AUGCORE_CUDA_ARCHS', '80;90')}",
            "-DCMAKE_BUILD_TYPE=Release",
        ]
        # prefer the cmake/ninja installed next to this interpreter (a fresh venv), else PATH's
        here = Path(sys.executable).parent
        cmake = str(here / "cmake") if (here / "cmake").exists() else "cmake"
        ninja = str(here / "ninja") if (here / "ninja").exists() else shutil.which("ninja")
        if ninja:
            args += ["-GNinja", f"-DCMAKE_MAKE_PROGRAM={ninja}"]
        cuda_home = os.environ.get("CUDA_HOME") or ("/usr/local/cuda" if Path("/usr/local/cuda/bin/nvcc").exists() else None)
        if cuda_home and Path(cuda_home, "bin", "nvcc").exists():
            args.append(f"-DCMAKE_CUDA_COMPILER={Path(cuda_home, 'bin', 'nvcc')}")
        jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 1))
        subprocess.run([cmake, "-S", str(ROOT), "-B", str(build_dir), *args], check=True)
        subprocess.run([cmake, "--build", str(build_dir), "--parallel", jobs], check=True)


setup(
    name="augcore",
    version="0.1.0",
    description="Data-efficient augmentation: coresets, targeted synthetic data, SAM and refinement",
    packages=find_packages(include=["augcore", "augcore.*"]),
    package_data={"augcore.configs": ["*.yaml"]},
    ext_modules=[CMakeExtension("augcore._C")],
    cmdclass={"build_ext": CMakeBuild},
    python_requires=">=3.10",
    install_requires=["torch>=2.4", "numpy", "tqdm", "pyyaml", "matplotlib", "scikit-learn", "scipy"],
    extras_require={
        "vision": ["torchvision"],
        "generate": ["diffusers", "transformers", "accelerate", "safetensors"],
        "fid": ["torchmetrics", "torch-fidelity"],
        "test": ["pytest", "pytest-benchmark", "hypothesis", "submodlib-py", "apricot-select"],
        "lightning": ["lightning"],
        "huggingface": ["transformers", "accelerate"],
    },
    entry_points={"console_scripts": ["augcore = augcore.cli:main"]},
    zip_safe=False,
)
