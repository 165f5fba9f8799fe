"""Generators and discriminators. Every net takes and returns [0, 1] images (B, C, H, W)."""

from realblur_gan.nets.ensemble import OutputAverage
from realblur_gan.nets.init import init_weights
from realblur_gan.nets.learnable_camera import ShakeBlurNet
from realblur_gan.nets.multiscale import MultiScaleGenerator
from realblur_gan.nets.nafnet import NAFBlock, NAFNet
from realblur_gan.nets.noise import NoiseInjection
from realblur_gan.nets.patchgan import MultiScalePatchGAN, PatchGAN
from realblur_gan.nets.resnet import ResBlock, ResNetGenerator
from realblur_gan.nets.unet import UNet

__all__ = [
    "MultiScaleGenerator",
    "MultiScalePatchGAN",
    "NAFBlock",
    "NAFNet",
    "NoiseInjection",
    "OutputAverage",
    "PatchGAN",
    "ResBlock",
    "ResNetGenerator",
    "ShakeBlurNet",
    "UNet",
    "init_weights",
]
