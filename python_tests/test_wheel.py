"""The wheel works on its own: built, installed into a fresh environment, run away from the source tree.

``pip wheel . --no-build-isolation --no-deps`` (CMake reuses ``$AUGCORE_BUILD_DIR``, default
build/, so this is a relink, not a rebuild), then a new virtual environment whose only augcore
is the wheel's. Its other packages (torch, ...) come from this environment's site-packages
through a .pth file, so nothing is downloaded twice; folders named in a .pth file are not
site folders, so the editable install's own .pth and import hook there are never run. Every
command runs from a scratch folder (not the clone) and the test checks where augcore was
imported from.
"""
from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    env = dict(os.environ, AUGCORE_BUILD_DIR=os.environ.get("AUGCORE_BUILD_DIR", str(ROOT / "build")))
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-build-isolation", "--no-deps",
                           "--disable-pip-version-check", "-w", str(dist)],
                          env=env, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    (path,) = dist.glob("augcore-*.whl")
    return path


@pytest.fixture(scope="module")
def fresh_env(wheel, tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("wheel_env")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  check=True, capture_output=True, text=True).stdout.strip())
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], *site.getsitepackages()}
    (purelib / "_augcore_test_dependencies.pth").write_text("\n".join(sorted(ours)) + "\n")
    done = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
                           "--disable-pip-version-check", str(wheel)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    work = base / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", AUGCORE_CACHE=str(base / "cache"))
    return {"venv": venv, "python": python, "work": work, "env": env}


def run_in(fresh_env: dict, *argv: str, timeout: int = 900) -> str:
    done = subprocess.run([str(a) for a in argv], cwd=fresh_env["work"], env=fresh_env["env"],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{argv} exited {done.returncode}\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done.stdout


def test_the_wheel_holds_the_extension_and_the_configs(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.startswith("augcore/_C") and n.endswith(".so") for n in names)
    from augcore.configs import list_configs
    assert {f"augcore/configs/{c}.yaml" for c in list_configs()} <= set(names)
    assert not any(n.startswith(("python_tests/", "bench/", "csrc/")) for n in names)


def test_import_comes_from_the_wheel_and_selects(fresh_env):
    script = """
import json, torch, augcore
x = torch.randn(300, 6, generator=torch.Generator().manual_seed(0))
groups = torch.arange(300) % 3
lazy = augcore.facility_location(x, 30, groups, method="lazy")
naive = augcore.facility_location(x, 30, groups, method="naive")
print(json.dumps({"file": augcore.__file__, "build": augcore.build_info(),
                  "lazy": lazy.indices.tolist(), "naive": naive.indices.tolist(),
                  "weights": lazy.weights.sum().item(), "budgets": lazy.budgets.tolist()}))
"""
    out = json.loads(run_in(fresh_env, fresh_env["python"], "-c", script).strip().splitlines()[-1])
    assert Path(out["file"]).resolve().is_relative_to(fresh_env["venv"].resolve())
    assert not Path(out["file"]).resolve().is_relative_to(ROOT)
    assert out["build"]["cpu"] is True
    assert out["lazy"] == out["naive"] and len(out["lazy"]) == 30   # lazy greedy is exact greedy
    assert out["budgets"] == [10, 10, 10] and out["weights"] == 300   # every point has one medoid


def test_commands_of_the_installed_package(fresh_env):
    augcore = fresh_env["venv"] / "bin" / "augcore"
    listing = run_in(fresh_env, augcore, "configs")
    assert "digits_demo" in listing and "cifar10_resnet20_coreset" in listing
    run_in(fresh_env, augcore, "demo", "--seeds", "1", "--subset-epochs", "1", "--epochs", "1", "--no-progress",
           "--out", "demo")
    assert (fresh_env["work"] / "demo" / "summary.json").is_file()
    trained = run_in(fresh_env, augcore, "train", "--config", "digits_demo", "--set", "schedule.epochs=1",
                     "--set", "run.progress=false", "--out", "train")
    assert "best test top-1" in trained and (fresh_env["work"] / "train" / "checkpoint.pt").is_file()
    table = run_in(fresh_env, augcore, "bench", "--quick", "--points", "2000")
    assert "| 10% | augcore lazy |" in table
