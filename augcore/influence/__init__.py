"""Influence of augmented samples on the validation loss ("Learning to Augment Influential Data",
ICLR 2019 submission).

Hessian operators and solvers (``hessian``, ``solvers``), factored last-layer scores
(``scores``), a Selector (``selector``), differentiable transforms and the light estimator
(``transforms``, ``learner``), the paper's generator G, critics, WGAN-GP pre-training and
E (``generator``), the labelled-fraction protocol of Tables 1-2 (``labelled``), and the
2-D toy experiment (``toy``).
"""
from augcore.influence.generator import (Critic, Estimator, GeneratorAugmenter, PretrainSettings, TransformGenerator,
                                         load_generator, pretrain_generator, save_generator)
from augcore.influence.hessian import (LastLayerHessian, ParameterHessian, join_last_layer, output_errors,
                                       split_last_layer)
from augcore.influence.learner import train_augmenter
from augcore.influence.scores import LastLayerInfluence, ParameterInfluence, last_layer_dot, last_layer_gradient
from augcore.influence.selector import InfluenceSelector
from augcore.influence.solvers import SolveResult, conjugate_gradient, largest_eigenvalue, lissa
from augcore.influence.toy import ToyResult, run_toy_experiment
from augcore.influence.transforms import (ImageAugmenter, TranslationAugmenter, affine_warp, colour_transform,
                                          flow_warp, identity_grid)

__all__ = ["Critic", "Estimator", "GeneratorAugmenter", "PretrainSettings", "TransformGenerator", "load_generator",
           "pretrain_generator", "save_generator", "ImageAugmenter", "InfluenceSelector", "LastLayerHessian", "LastLayerInfluence", "ParameterHessian",
           "ParameterInfluence", "SolveResult", "ToyResult", "TranslationAugmenter", "affine_warp",
           "colour_transform", "conjugate_gradient", "flow_warp", "identity_grid", "join_last_layer",
           "largest_eigenvalue", "last_layer_dot", "last_layer_gradient", "lissa", "output_errors",
           "run_toy_experiment", "split_last_layer", "train_augmenter"]
