"""Telemetry: GPU sampling through NVML during local calls, and the cost of each call."""

from spanlens.telemetry.cost import call_cost
from spanlens.telemetry.gpu import GpuReading, GpuSampler, GpuSamples, summarize

__all__ = ["GpuReading", "GpuSampler", "GpuSamples", "call_cost", "summarize"]
