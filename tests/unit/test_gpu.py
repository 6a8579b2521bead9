"""GPU telemetry: quiet without a GPU, per-field failures, sampling summaries, pause limits."""

from __future__ import annotations

import asyncio
import logging
import sys
from types import SimpleNamespace
from typing import Any

import pytest

from spanlens_lsp.telemetry.cost import call_cost
from spanlens_lsp.telemetry.gpu import GpuReading, GpuSampler, summarize

MIB = 1024 * 1024


class NVMLError(Exception):
    """Stands for pynvml.NVMLError; subclasses are named like pynvml's."""


class NVMLError_LibraryNotFound(NVMLError):  # named like pynvml's
    pass


class NVMLError_NotSupported(NVMLError):  # named like pynvml's
    pass


class FakeGpu:
    """One device's state; change the attributes to move the readings."""

    def __init__(self, name: str = "NVIDIA H200", used_mb: int = 1000, total_mb: int = 144000):
        self.name = name
        self.used_mb = used_mb
        self.total_mb = total_mb
        self.util = 10
        self.temp = 40
        self.milliwatts: int | None = 120_500  # None = power not supported on this board


class FakeNvml:
    """The part of pynvml's API that GpuSampler uses, backed by FakeGpu objects."""

    NVML_TEMPERATURE_GPU = 0

    def __init__(self, *gpus: FakeGpu, init_error: Exception | None = None) -> None:
        self.gpus = list(gpus)
        self.init_error = init_error
        self.broken: set[str] = set()  # names of functions that raise
        self.calls: list[str] = []

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if name in self.broken:
            raise NVMLError(f"{name} failed")

    def nvmlInit(self) -> None:
        self._call("nvmlInit")
        if self.init_error is not None:
            raise self.init_error

    def nvmlShutdown(self) -> None:
        self._call("nvmlShutdown")

    def nvmlDeviceGetCount(self) -> int:
        self._call("nvmlDeviceGetCount")
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeGpu:
        self._call("nvmlDeviceGetHandleByIndex")
        return self.gpus[index]

    def nvmlDeviceGetName(self, gpu: FakeGpu) -> bytes:
        self._call("nvmlDeviceGetName")
        return gpu.name.encode()  # older pynvml returns bytes

    def nvmlDeviceGetMemoryInfo(self, gpu: FakeGpu) -> Any:
        self._call("nvmlDeviceGetMemoryInfo")
        return SimpleNamespace(
            used=gpu.used_mb * MIB,
            total=gpu.total_mb * MIB,
            free=(gpu.total_mb - gpu.used_mb) * MIB,
        )

    def nvmlDeviceGetUtilizationRates(self, gpu: FakeGpu) -> Any:
        self._call("nvmlDeviceGetUtilizationRates")
        return SimpleNamespace(gpu=gpu.util, memory=5)

    def nvmlDeviceGetTemperature(self, gpu: FakeGpu, sensor: int) -> int:
        self._call("nvmlDeviceGetTemperature")
        assert sensor == self.NVML_TEMPERATURE_GPU
        return gpu.temp

    def nvmlDeviceGetPowerUsage(self, gpu: FakeGpu) -> int:
        self._call("nvmlDeviceGetPowerUsage")
        if gpu.milliwatts is None:
            raise NVMLError_NotSupported("Not Supported")
        return gpu.milliwatts


def reading(index: int = 0, **values: Any) -> GpuReading:
    fields: dict[str, Any] = {
        "name": "gpu",
        "vram_used_mb": 1000,
        "vram_total_mb": 8000,
        "utilization_pct": 50,
        "temperature_c": 60,
        "power_w": 100.0,
    }
    return GpuReading(index=index, **{**fields, **values})


# -- unavailable is a quiet, normal state ----------------------------------------------------


def test_real_nvml_on_this_machine_is_consistent(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="spanlens_lsp")
    sampler = GpuSampler()
    try:
        readings = sampler.snapshot()
        limit = sampler.limits_exceeded(min_free_vram_mb=1, max_temperature_c=200)
        summary = asyncio.run(_sample_briefly(sampler))
    finally:
        sampler.close()

    if sampler.available:
        assert sampler.reason is None
        assert readings and [r.index for r in readings] == sorted(r.index for r in readings)
        assert all(r.vram_total_mb is None or r.vram_total_mb > 0 for r in readings)
        assert summary is not None and summary["samples"] >= 1
    else:
        assert isinstance(sampler.reason, str) and sampler.reason
        assert readings == [] and limit is None and summary is None
    assert [r for r in caplog.records if r.levelno > logging.DEBUG] == []


async def _sample_briefly(sampler: GpuSampler) -> dict[str, Any] | None:
    async with sampler.sampling(0.01) as samples:
        await asyncio.sleep(0.02)
    return samples.summary


def test_missing_driver_is_reported_quietly(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="spanlens_lsp")
    sampler = GpuSampler(nvml=FakeNvml(init_error=NVMLError_LibraryNotFound()))

    assert sampler.available is False
    assert sampler.reason == "no NVIDIA driver"
    assert sampler.snapshot() == []
    assert sampler.limits_exceeded(min_free_vram_mb=4096, max_temperature_c=80) is None
    assert [r for r in caplog.records if r.levelno > logging.DEBUG] == []


def test_without_nvidia_ml_py_the_sampler_is_quietly_unavailable(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """nvidia-ml-py is a dependency, but a machine where it cannot be imported still runs."""
    caplog.set_level(logging.DEBUG, logger="spanlens_lsp")
    monkeypatch.setitem(sys.modules, "pynvml", None)  # `import pynvml` raises ImportError
    sampler = GpuSampler()

    assert sampler.available is False
    assert sampler.reason == "nvidia-ml-py not installed"
    assert sampler.snapshot() == []
    assert sampler.limits_exceeded(min_free_vram_mb=4096, max_temperature_c=80) is None
    assert [r for r in caplog.records if r.levelno > logging.DEBUG] == []


def test_other_init_failures_and_zero_devices_are_unavailable_too() -> None:
    broken = GpuSampler(nvml=FakeNvml(FakeGpu(), init_error=RuntimeError("weird")))
    empty_nvml = FakeNvml()
    empty = GpuSampler(nvml=empty_nvml)

    assert broken.available is False and broken.reason == "NVML unavailable: weird"
    assert empty.available is False and empty.reason == "no NVIDIA GPU"
    assert empty_nvml.calls[-1] == "nvmlShutdown"


async def test_sampling_without_a_gpu_yields_no_summary() -> None:
    sampler = GpuSampler(nvml=FakeNvml(init_error=NVMLError_LibraryNotFound()))

    async with sampler.sampling(0.01) as samples:
        await asyncio.sleep(0)

    assert samples.readings == [] and samples.summary is None


# -- readings --------------------------------------------------------------------------------


def test_snapshot_converts_units_per_device() -> None:
    small = FakeGpu("NVIDIA RTX 4090", used_mb=2048, total_mb=24564)
    small.milliwatts = 61_234
    sampler = GpuSampler(nvml=FakeNvml(FakeGpu(), small))

    readings = sampler.snapshot()

    assert sampler.available and sampler.reason is None
    assert readings[1] == GpuReading(
        index=1,
        name="NVIDIA RTX 4090",
        vram_used_mb=2048,
        vram_total_mb=24564,
        utilization_pct=10,
        temperature_c=40,
        power_w=61.2,
    )
    assert readings[1].vram_free_mb == 24564 - 2048


def test_each_failing_value_is_none_on_its_own() -> None:
    gpu = FakeGpu()
    gpu.milliwatts = None  # power not supported
    nvml = FakeNvml(gpu)
    nvml.broken = {"nvmlDeviceGetUtilizationRates"}

    (only,) = GpuSampler(nvml=nvml).snapshot()

    assert only.power_w is None and only.utilization_pct is None
    assert (only.vram_used_mb, only.temperature_c, only.name) == (1000, 40, "NVIDIA H200")


def test_a_device_that_cannot_be_read_at_all_gives_an_empty_reading() -> None:
    nvml = FakeNvml(FakeGpu())
    nvml.broken = {
        "nvmlDeviceGetName",
        "nvmlDeviceGetMemoryInfo",
        "nvmlDeviceGetUtilizationRates",
        "nvmlDeviceGetTemperature",
        "nvmlDeviceGetPowerUsage",
    }

    (only,) = GpuSampler(nvml=nvml).snapshot()

    assert only == GpuReading(0, None, None, None, None, None, None)
    assert only.vram_free_mb is None


def test_close_shuts_nvml_down_once_and_a_later_use_starts_again() -> None:
    nvml = FakeNvml(FakeGpu())
    sampler = GpuSampler(nvml=nvml)
    assert sampler.available

    sampler.close()
    sampler.close()

    assert nvml.calls.count("nvmlShutdown") == 1
    assert sampler.snapshot() and nvml.calls.count("nvmlInit") == 2


# -- sampling and summaries ------------------------------------------------------------------


def test_summary_sums_vram_and_power_and_takes_the_busiest_device() -> None:
    samples = [
        [reading(0, utilization_pct=20, temperature_c=50), reading(1, vram_used_mb=3000)],
        [reading(0, utilization_pct=90, power_w=250.04), reading(1, temperature_c=71)],
    ]

    assert summarize(samples) == {
        "samples": 2,
        "vram_used_mb_max": 4000,
        "vram_total_mb": 16000,
        "util_pct_max": 90,
        "util_pct_mean": 70.0,
        "temp_c_max": 71,
        "power_w_max": 350.0,
    }


def test_summary_keeps_unknown_values_unknown() -> None:
    unknown = reading(utilization_pct=None, power_w=None, temperature_c=None)

    summary = summarize([[unknown]])

    assert summary is not None
    assert (summary["util_pct_max"], summary["util_pct_mean"]) == (None, None)
    assert (summary["power_w_max"], summary["temp_c_max"]) == (None, None)
    assert summarize([]) is None


async def test_sampling_collects_during_the_block_and_summarises_on_exit() -> None:
    gpu = FakeGpu(used_mb=500)
    sampler = GpuSampler(nvml=FakeNvml(gpu))

    async with sampler.sampling(0.01) as samples:
        await asyncio.sleep(0.03)
        gpu.used_mb, gpu.util, gpu.temp = 9000, 97, 77  # the model is running now
        assert samples.summary is None

    assert len(samples.readings) >= 2  # at least one at the start and one at the end
    assert samples.summary == summarize(samples.readings)
    assert samples.summary is not None
    assert samples.summary["vram_used_mb_max"] == 9000
    assert (samples.summary["util_pct_max"], samples.summary["temp_c_max"]) == (97, 77)
    assert samples.summary["vram_total_mb"] == 144000 and samples.summary["power_w_max"] == 120.5


async def test_sampling_still_summarises_when_the_call_fails() -> None:
    sampler = GpuSampler(nvml=FakeNvml(FakeGpu()))

    with pytest.raises(TimeoutError):
        async with sampler.sampling(0.01) as samples:
            raise TimeoutError("model timeout")

    assert samples.summary is not None and samples.summary["samples"] >= 1


# -- pause limits ----------------------------------------------------------------------------


def test_limits_pause_on_heat_and_on_low_free_vram() -> None:
    gpu = FakeGpu(used_mb=7000, total_mb=8000)
    gpu.temp = 86
    sampler = GpuSampler(nvml=FakeNvml(gpu))

    hot = sampler.limits_exceeded(min_free_vram_mb=0, max_temperature_c=85)
    full = sampler.limits_exceeded(min_free_vram_mb=2048, max_temperature_c=0)

    assert hot == "GPU 0 at 86 °C, above the 85 °C limit"
    assert full == "1000 MiB VRAM free, below the 2048 MiB limit"
    assert sampler.limits_exceeded(min_free_vram_mb=1000, max_temperature_c=86) is None
    assert sampler.limits_exceeded(min_free_vram_mb=0, max_temperature_c=0) is None


def test_vram_limit_passes_while_any_device_has_room() -> None:
    full, roomy = FakeGpu(used_mb=7900, total_mb=8000), FakeGpu(used_mb=1000, total_mb=8000)
    sampler = GpuSampler(nvml=FakeNvml(full, roomy))

    assert sampler.limits_exceeded(min_free_vram_mb=4096, max_temperature_c=0) is None


def test_unknown_values_never_pause() -> None:
    nvml = FakeNvml(FakeGpu())
    nvml.broken = {"nvmlDeviceGetMemoryInfo", "nvmlDeviceGetTemperature"}

    assert (
        GpuSampler(nvml=nvml).limits_exceeded(min_free_vram_mb=10**6, max_temperature_c=1) is None
    )


# -- cost ------------------------------------------------------------------------------------


def test_call_cost_prices_per_million_tokens() -> None:
    assert call_cost(1_000_000, 500_000, 0.15, 0.60) == pytest.approx(0.45)
    assert call_cost(1200, 300, 0.0, 0.0) == 0.0
    assert call_cost(None, None, 3.0, 15.0) == 0.0
