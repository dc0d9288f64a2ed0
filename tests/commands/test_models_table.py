"""Model costs: parameter counts, forward FLOPs against a count by hand, the model table."""

import torch
from rich.table import Table
from torch import nn

from lit_seg.commands.models_table import model_table, render_table
from lit_seg.networks.costs import count_parameters, forward_flops
from lit_seg.networks.registry import create_model
from lit_seg.networks.smp import SMPModel


class ConvStack(nn.Module):
    """Four convs: plain, dilated, grouped and strided, and a 1x1 classifier (the output contract)."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.Conv2d(8, 8, 3, padding=2, dilation=2),
            nn.Conv2d(8, 16, 3, padding=1, stride=2, groups=4),
            nn.Conv2d(16, 5, 1),
        )

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"out": self.body(images)}


def test_forward_flops_equal_a_count_by_hand() -> None:
    batch, height, width = 2, 16, 20
    # Multiply-accumulates per conv: output elements x (input channels / groups) x kernel area.
    macs = (
        8 * height * width * 3 * 9  # 3 -> 8, 3x3
        + 8 * height * width * 8 * 9  # 8 -> 8, 3x3 dilated 2: same size, same cost per output
        + 16 * (height // 2) * (width // 2) * (8 // 4) * 9  # 8 -> 16, 3x3, stride 2, 4 groups
        + 5 * (height // 2) * (width // 2) * 16  # 16 -> 5, 1x1
    )
    assert forward_flops(ConvStack(), (height, width), batch=batch) == 2 * batch * macs


def test_count_parameters_counts_only_trainable_parameters() -> None:
    model = ConvStack()
    model.body[0].requires_grad_(False)
    expected = 8 * 2 + (8 * 8 * 9 + 8) + (16 * 2 * 9 + 16) + (5 * 16 + 5)  # BN, dilated, grouped, 1x1
    assert count_parameters(model) == expected


def test_flops_on_the_meta_device_match_the_quoted_smp_costs() -> None:
    with torch.device("meta"):
        deeplab = SMPModel(21, arch="DeepLabV3Plus", encoder_name="resnet50")
        pspnet = SMPModel(21, arch="PSPNet", encoder_name="resnet50")
    assert round(forward_flops(deeplab) / 2e9, 1) == 36.6  # PAPERS.md, "Costs"
    assert round(forward_flops(pspnet) / 2e9, 1) == 12.0


def test_training_flops_add_the_auxiliary_head() -> None:
    with torch.device("meta"):
        pspnet = create_model("pspnet", 21, backbone="resnet50s").eval()
    aux_macs = 64 * 64 * (1024 * 256 * 9 + 256 * 21)  # on layer3's 64x64 map (output stride 8): 3x3 conv, 1x1 conv
    inference = forward_flops(pspnet, batch=2)
    assert forward_flops(pspnet, batch=2, training=True) - inference == 2 * 2 * aux_macs
    assert not pspnet.training


def test_model_table_and_rendering() -> None:
    rows = model_table(["refinenet", "denseaspp"], num_classes=21, size=256)
    assert [row["name"] for row in rows] == ["refinenet", "denseaspp"]
    assert rows[0]["params"] == 118_052_437 and rows[0]["size"] == 256
    assert all(row["gmac"] > 0 for row in rows)
    text = render_table(rows, markdown=True)
    assert text.splitlines()[0] == "| Model | Params | GMAC | GFLOPs | Input |"
    assert "| refinenet | 118,052,437 |" in text
    table = render_table(rows, markdown=False)
    assert isinstance(table, Table) and table.row_count == 2


def test_models_command_prints_markdown_table(capsys) -> None:  # noqa: ANN001
    from lit_seg.commands.main import main

    main(["models", "segnet_basic", "--classes", "11", "--size", "64", "--markdown"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "| Model | Params | GMAC | GFLOPs | Input |"
    assert lines[2].startswith("| segnet_basic | 1,416,587 |") and lines[2].endswith("| 64x64 |")
