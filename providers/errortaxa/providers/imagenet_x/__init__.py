"""The ``imagenet_x`` feature provider: ImageNet-X's factors of variation (Idrissi et al. 2022) of
the ImageNet validation images, read from the installed ``imagenet-x`` package (the ``factors``
extra); test ``factor`` with ``params: {factor: NAME}``. The annotations are CC BY-NC 4.0: nothing
derived from them ships with errortaxa."""
