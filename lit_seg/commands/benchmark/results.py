"""Benchmark results: summary statistics, the machine's stamp, and the JSON + Markdown files."""

import json
import os
import platform
import re
import statistics
from datetime import datetime
from pathlib import Path

import lightning
import torch


def spread(values: list[float]) -> dict[str, float]:
    """Median, quartiles, extremes and count of repeated measurements."""
    ordered = sorted(values)
    quartiles = statistics.quantiles(ordered, n=4, method="inclusive") if len(ordered) > 1 else ordered * 3
    return {
        "median": statistics.median(ordered),
        "q1": quartiles[0],
        "q3": quartiles[2],
        "min": ordered[0],
        "max": ordered[-1],
        "n": len(ordered),
    }


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(device: torch.device) -> dict[str, object]:
    """What the figures were measured on: the device, CPU and GPU, and the software versions."""
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    return {
        "device": device.type,
        "cpu": _cpu_name(),
        "cpu_cores": os.cpu_count(),
        "gpu": gpu,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "lightning": lightning.__version__,
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "cudnn_conv_fp32_precision": torch.backends.cudnn.conv.fp32_precision,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def device_label(stamp: dict[str, object]) -> str:
    """A file-name-safe name of the device measured: the GPU's name, or ``cpu``."""
    name = str(stamp["gpu"] or "cpu").lower()
    return re.sub(r"[^a-z0-9]+", "-", name).strip("-")


def write(result: dict, markdown: str, directory: Path, model: str, mode: str) -> tuple[Path, Path]:
    """Writes ``<timestamp>-<model>-<device>[-<mode>].json`` and ``.md`` under ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    suffix = "" if mode == "benchmark" else f"-{mode}"
    stem = f"{datetime.now():%Y%m%d-%H%M%S}-{model}-{device_label(result['machine'])}{suffix}"
    json_path, md_path = directory / f"{stem}.json", directory / f"{stem}.md"
    json_path.write_text(json.dumps(result, indent=2) + "\n")
    md_path.write_text(markdown)
    return json_path, md_path


def header(result: dict) -> str:
    """The Markdown preamble: command, machine, versions, workload."""
    stamp = result["machine"]
    device = stamp["gpu"] or f"CPU {stamp['cpu']} ({stamp['cpu_cores']} cores)"
    lines = [
        f"# {result['mode']}: {result['model']} {result['image_size'][0]}x{result['image_size'][1]}, "
        f"batch {result['batch']}, {result['classes']} classes",
        "",
        f"- command: `{result['command']}`",
        f"- measured: {result['time']} on {device}",
        f"- torch {stamp['torch']}, CUDA {stamp['cuda']}, cuDNN {stamp['cudnn']}, lightning {stamp['lightning']}, "
        f"Python {stamp['python']}, {stamp['platform']}; fp32 matmul precision {stamp['float32_matmul_precision']}, "
        f"cuDNN fp32 convolutions {stamp['cudnn_conv_fp32_precision']}",
        f"- data: {result['data']}",
        f"- timing: {result['timing']}",
        "",
    ]
    return "\n".join(lines)

