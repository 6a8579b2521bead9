"""Telemetry: GPU sampling through NVML during local calls, and the cost of each call."""
