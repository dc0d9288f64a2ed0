"""The package root exports the public API, and importing it loads no heavy dependency."""

import subprocess
import sys

import lit_seg


def test_public_names_import_from_the_root() -> None:
    from lit_seg import CamVidDataModule, SegmentationModule, create_model, list_models
    from lit_seg.data.datasets.camvid import CamVidDataModule as Defined
    from lit_seg.training.module import SegmentationModule as Module

    assert SegmentationModule is Module and CamVidDataModule is Defined
    assert "pspnet" in list_models() and create_model("smp.unet", 3, encoder_name="resnet18") is not None
    assert set(lit_seg.__all__) <= set(dir(lit_seg))


def test_import_lit_seg_loads_no_torch() -> None:
    code = "import sys, lit_seg; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
