"""GPU telemetry through NVML (nvidia-ml-py): readings, sampling during a call, pause limits.

A machine without an NVIDIA GPU, driver or nvidia-ml-py is a normal state, not an error: the
sampler says it is unavailable, gives a short reason, logs at DEBUG only, and every method
returns an empty or None result. No NVML failure ever escapes this module; a single value
that cannot be read (power on a board that does not report it) is None.

NVML calls block briefly, so async code samples through :meth:`GpuSampler.sampling`, which
runs them in a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any, TypeVar

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_N = TypeVar("_N", int, float)
_MIB = 1024 * 1024
#: Shortest sampling interval; a smaller one would only burn a thread.
_MIN_INTERVAL = 0.01

# Why NVML is unavailable, by error class name (pynvml builds one class per NVML error code;
# matching names keeps the injected test double free of pynvml's classes).
_REASONS = {
    "NVMLError_LibraryNotFound": "no NVIDIA driver",
    "NVMLError_DriverNotLoaded": "NVIDIA driver not loaded",
    "NVMLError_NoPermission": "no permission to query the GPU",
    "NVMLError_LibRmVersionMismatch": "NVIDIA driver and library versions differ",
    "NVMLError_InsufficientResources": "NVML out of resources",
}


@dataclasses.dataclass(frozen=True)
class GpuReading:
    """One device at one moment. Any value NVML cannot give is None."""

    index: int
    name: str | None
    vram_used_mb: int | None
    vram_total_mb: int | None
    utilization_pct: int | None
    temperature_c: int | None
    power_w: float | None

    @property
    def vram_free_mb(self) -> int | None:
        """Total minus used VRAM in MiB, when both are known."""
        if self.vram_used_mb is None or self.vram_total_mb is None:
            return None
        return self.vram_total_mb - self.vram_used_mb


@dataclasses.dataclass
class GpuSamples:
    """What :meth:`GpuSampler.sampling` collected: one list of readings per sample."""

    readings: list[list[GpuReading]] = dataclasses.field(default_factory=list)
    #: Filled in when the ``async with`` block exits: see :func:`summarize`. None = no GPU.
    summary: dict[str, Any] | None = None


class GpuSampler:
    """Reads NVIDIA GPUs through NVML; quietly unavailable where there is none.

    ``nvml`` is the NVML binding: the real ``pynvml`` module by default (imported on first
    use), or any object with the same functions, which is how tests supply a fake GPU.
    NVML is initialised on first use (a brief blocking call) and shut down by :meth:`close`.
    """

    def __init__(self, nvml: Any = None) -> None:
        self._nvml = nvml
        self._lock = threading.Lock()
        self._started = False
        self._initialised = False
        self._reason: str | None = None
        self._devices: list[tuple[int, Any]] = []
        self._names: dict[int, str | None] = {}

    @property
    def available(self) -> bool:
        """True when at least one GPU can be read."""
        self._ensure_started()
        return self._reason is None

    @property
    def reason(self) -> str | None:
        """Why the GPU cannot be read ("no NVIDIA driver", ...), or None when it can."""
        self._ensure_started()
        return self._reason

    def close(self) -> None:
        """Shut NVML down; a later call initialises it again."""
        with self._lock:
            if self._initialised:
                _quietly(self._nvml.nvmlShutdown)
            self._started = self._initialised = False
            self._reason = None
            self._devices = []
            self._names = {}

    def snapshot(self) -> list[GpuReading]:
        """Current readings of every device; empty when unavailable. Blocks briefly."""
        if not self.available:
            return []
        return [self._read(index, handle) for index, handle in self._devices]

    @contextlib.asynccontextmanager
    async def sampling(self, interval: float = 0.5) -> AsyncIterator[GpuSamples]:
        """Sample every ``interval`` seconds while the block runs, in a worker thread.

        On exit (also when the block raises) ``samples.summary`` is the compact summary for
        the attempt row, or None when no GPU is available::

            async with sampler.sampling(0.5) as samples:
                reply = await backend.complete(request)
            attempt.gpu = samples.summary
        """
        samples = GpuSamples()
        if not self._started:
            await asyncio.to_thread(self._ensure_started)
        if not self.available:
            yield samples
            return
        collector = asyncio.create_task(self._collect(samples, max(interval, _MIN_INTERVAL)))
        try:
            yield samples
        finally:
            collector.cancel()
            await asyncio.wait([collector])
            final = await asyncio.to_thread(self.snapshot)  # the state as the call ends
            if final:
                samples.readings.append(final)
            samples.summary = summarize(samples.readings)

    def limits_exceeded(self, min_free_vram_mb: float, max_temperature_c: float) -> str | None:
        """Why local enrichment should pause now, or None. A limit of 0 means no limit.

        Temperature: any device hotter than the limit. VRAM: even the device with the most
        free VRAM has less than the limit (a call can still run on one with room). Unknown
        values and an unavailable GPU never pause anything. Blocks briefly.
        """
        readings = self.snapshot() if min_free_vram_mb > 0 or max_temperature_c > 0 else []
        if max_temperature_c > 0:
            hot = [r for r in readings if r.temperature_c is not None]
            hottest = max(hot, key=lambda r: r.temperature_c or 0, default=None)
            if hottest is not None and (hottest.temperature_c or 0) > max_temperature_c:
                return (
                    f"GPU {hottest.index} at {hottest.temperature_c} °C, "
                    f"above the {max_temperature_c:g} °C limit"
                )
        if min_free_vram_mb > 0:
            free = [r.vram_free_mb for r in readings if r.vram_free_mb is not None]
            if free and max(free) < min_free_vram_mb:
                return f"{max(free)} MiB VRAM free, below the {min_free_vram_mb:g} MiB limit"
        return None

    # -- internals -----------------------------------------------------------------------------

    def _ensure_started(self) -> None:
        with self._lock:
            if not self._started:
                self._reason = self._start()
                self._started = True
                if self._reason is not None:
                    log.debug("GPU telemetry unavailable: %s", self._reason)

    def _start(self) -> str | None:
        """Initialise NVML and find the devices; the reason it is unusable, or None."""
        if self._nvml is None:
            try:
                import pynvml
            except ImportError:
                return "nvidia-ml-py not installed"
            self._nvml = pynvml
        nvml = self._nvml
        try:
            nvml.nvmlInit()
        except Exception as exc:
            return _REASONS.get(type(exc).__name__) or f"NVML unavailable: {_describe(exc)}"
        self._initialised = True
        count = _quietly(nvml.nvmlDeviceGetCount)
        reason: str | None
        if count is None:
            reason = "cannot count GPUs"
        else:
            for index in range(count):
                handle = _quietly(nvml.nvmlDeviceGetHandleByIndex, index)
                if handle is not None:
                    self._devices.append((index, handle))
                    self._names[index] = _text(_quietly(nvml.nvmlDeviceGetName, handle))
            reason = None if self._devices else "no NVIDIA GPU"
        if reason is not None:
            _quietly(nvml.nvmlShutdown)
            self._initialised = False
        return reason

    def _read(self, index: int, handle: Any) -> GpuReading:
        nvml = self._nvml
        memory = _quietly(nvml.nvmlDeviceGetMemoryInfo, handle)
        utilization = _quietly(nvml.nvmlDeviceGetUtilizationRates, handle)
        sensor = getattr(nvml, "NVML_TEMPERATURE_GPU", 0)
        temperature = _quietly(nvml.nvmlDeviceGetTemperature, handle, sensor)
        milliwatts = _quietly(nvml.nvmlDeviceGetPowerUsage, handle)
        return GpuReading(
            index=index,
            name=self._names.get(index),
            vram_used_mb=_mib(getattr(memory, "used", None)),
            vram_total_mb=_mib(getattr(memory, "total", None)),
            utilization_pct=_int(getattr(utilization, "gpu", None)),
            temperature_c=_int(temperature),
            power_w=round(milliwatts / 1000, 1) if isinstance(milliwatts, (int, float)) else None,
        )

    async def _collect(self, samples: GpuSamples, interval: float) -> None:
        while True:
            readings = await asyncio.to_thread(self.snapshot)
            if readings:
                samples.readings.append(readings)
            await asyncio.sleep(interval)


def summarize(samples: Sequence[Sequence[GpuReading]]) -> dict[str, Any] | None:
    """The compact GPU summary stored with an attempt, or None for no samples.

    Per sample, VRAM and power are summed over devices (what the machine uses) and
    utilisation and temperature are those of the busiest / hottest device; the summary keeps
    their maxima, the mean utilisation, and the total VRAM. Unknown values stay None.
    """
    if not samples:
        return None
    used = [_total(r.vram_used_mb for r in sample) for sample in samples]
    totals = [_total(r.vram_total_mb for r in sample) for sample in samples]
    util = [_peak(r.utilization_pct for r in sample) for sample in samples]
    temps = [_peak(r.temperature_c for r in sample) for sample in samples]
    power = [_total(r.power_w for r in sample) for sample in samples]
    known_util = [u for u in util if u is not None]
    power_max = _peak(power)
    return {
        "samples": len(samples),
        "vram_used_mb_max": _peak(used),
        "vram_total_mb": _peak(totals),
        "util_pct_max": _peak(util),
        "util_pct_mean": round(sum(known_util) / len(known_util), 1) if known_util else None,
        "temp_c_max": _peak(temps),
        "power_w_max": round(power_max, 1) if power_max is not None else None,
    }


def _quietly(call: Callable[..., _T], *args: Any) -> _T | None:
    """``call(*args)``, or None (logged at DEBUG) when NVML cannot answer."""
    try:
        return call(*args)
    except Exception as exc:
        log.debug("NVML %s failed: %s", getattr(call, "__name__", call), _describe(exc))
        return None


def _describe(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:  # pynvml's __str__ asks the library, which may be what is missing
        text = ""
    return text or type(exc).__name__


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else None


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) else None


def _mib(value: Any) -> int | None:
    return round(value / _MIB) if isinstance(value, (int, float)) else None


def _peak(values: Iterable[_N | None]) -> _N | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None


def _total(values: Iterable[_N | None]) -> _N | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def sampler_for(enabled: bool) -> GpuSampler | None:
    """The GPU sampler a composition root hands the engine: None when GPU telemetry is off.
    The caller closes it."""
    return GpuSampler() if enabled else None
