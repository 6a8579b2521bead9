"""Priority queue, idle detection, workers and cancellation between the editor and the engine."""
