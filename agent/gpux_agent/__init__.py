"""gpux-agent: the GPU compute exchange's provider agent (standard library only).

Runs on a provider's GPU node: reports the node's accelerators (nvidia-smi or npu-smi), sends heartbeats, and
installs/removes buyers' SSH keys when the platform hands a booking's access over.
"""

__version__ = "0.1.0"
