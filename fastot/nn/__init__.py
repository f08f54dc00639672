"""Networks: toy MLPs and image networks of the papers, and the name registries the trainer builds from."""

from fastot.nn import dcgan, discriminator, layers, ncsnpp, toy, translation
from fastot.nn.registry import MAPS, POTENTIALS, build_map, build_potential, register_map, register_potential
from fastot.nn.toy import MLPMap, MLPPotential, UOTMToyMap, UOTMToyPotential

__all__ = [
    "MAPS",
    "POTENTIALS",
    "MLPMap",
    "MLPPotential",
    "UOTMToyMap",
    "UOTMToyPotential",
    "build_map",
    "build_potential",
    "dcgan",
    "discriminator",
    "layers",
    "ncsnpp",
    "register_map",
    "register_potential",
    "toy",
    "translation",
]
