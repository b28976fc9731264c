"""The model zoo: create_model over the table of architectures (registry), the CIFAR-style ones
(cifar), torchvision's (imagenet), what they share (sizing), their encoder/head split (split).

Public names load lazily (``from compress.models import X`` imports only the module of X)."""
from __future__ import annotations

from analysis._lazy import lazy_exports

_EXPORTS = {
    "BasicBlock": "cifar",
    "Bottleneck": "cifar",
    "CifarResNet": "cifar",
    "CifarVGG": "cifar",
    "ClassicVGG": "cifar",
    "LeNet5": "cifar",
    "MODELS": "registry",
    "MobileNetV1": "cifar",
    "ModelSplit": "split",
    "SPLITTABLE": "split",
    "TorchvisionDenseNet": "imagenet",
    "can_downsample": "sizing",
    "check_width": "sizing",
    "conv_size": "sizing",
    "create_model": "registry",
    "init_cifar": "sizing",
    "lenet5": "cifar",
    "list_models": "registry",
    "make_divisible": "sizing",
    "mobilenet_v1": "cifar",
    "mobilenet_v2": "cifar",
    "model_info": "registry",
    "model_structure": "registry",
    "no_inplace": "sizing",
    "register_model": "registry",
    "resnet18": "cifar",
    "resnet34": "cifar",
    "resnet50": "cifar",
    "scale_channels": "sizing",
    "split_model": "split",
    "splitter_of": "split",
    "tv_densenet161": "imagenet",
    "tv_densenet169": "imagenet",
    "tv_densenet201": "imagenet",
    "tv_efficientnet_b0": "imagenet",
    "tv_efficientnet_b1": "imagenet",
    "tv_efficientnet_b2": "imagenet",
    "tv_efficientnet_b3": "imagenet",
    "tv_efficientnet_b4": "imagenet",
    "tv_efficientnet_b5": "imagenet",
    "tv_mobilenet_v2": "imagenet",
    "tv_resnet101": "imagenet",
    "tv_resnet152": "imagenet",
    "tv_resnet18": "imagenet",
    "tv_resnet34": "imagenet",
    "tv_resnet50": "imagenet",
    "tv_vgg11": "imagenet",
    "tv_vgg11_bn": "imagenet",
    "tv_vgg16": "imagenet",
    "tv_vgg19": "imagenet",
    "vgg11": "cifar",
    "vgg11_fc": "cifar",
    "vgg16": "cifar",
    "vgg16_fc": "cifar",
    "vgg19": "cifar",
    "vgg19_fc": "cifar",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
