"""VGG16's convolution widths, shared by FCN (plain convs) and SegNet (convs with BN)."""

# The 13 3x3 convolutions of VGG16, grouped by the stage that a 2x2 max-pool ends.
VGG16_STAGES = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
