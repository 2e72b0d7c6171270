"""What the drill engine needs from an environment: the `Target` protocol.

A target owns the environment a drill runs in. The engine asks it for the
regions and their bootstrap servers, validates the spec's fault against it
before anything is touched, and has it prepare the environment (bring it up
when nobody else has), apply and clear faults (each returning the instant it
took effect), fence a region, stop replication, read end offsets and
checkpoints, run replication the other way for a failback, count the bytes that crossed between the regions, say what it is
made of for the cost model, and upload the evidence. Nothing outside a target
reaches into namespaces, the local pair, nftables or Pulumi state.

A Pulumi-stack target (faults as stack updates) implements the same protocol;
the engine does not change.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from components.faults import FaultSpec
from drills.record import TargetFacts

if TYPE_CHECKING:
    from drills.cost.model import Inventory

Progress = Callable[[str], None]


class TargetError(Exception):
    """The target cannot do what was asked (unknown stack or region, environment not up).
    `str()` is one line naming what is wrong and how to fix it."""


class Target(Protocol):
    primary: str
    standby: str

    @property
    def policy(self) -> str: ...

    # --- the environment --------------------------------------------------------------
    def facts(self) -> TargetFacts: ...
    def resolve_fault(self, fault: FaultSpec) -> FaultSpec:
        """The fault checked against this target, defaults filled in (region, link,
        parameters); raises TargetError naming what is wrong. Touches nothing."""
        ...

    def prepare(self, progress: Progress = lambda s: None) -> None:
        """Make the environment ready (bring it up if nobody has); idempotent."""
        ...

    def release(self) -> None:
        """Undo what `prepare` created (nothing, when the environment was already up)."""
        ...

    # --- clients ----------------------------------------------------------------------
    def bootstrap(self, region: str) -> str: ...
    def remote_topic(self, topic: str) -> str: ...
    def restart_replication(self) -> float:
        """MirrorMaker 2 restarted under the policy in force, replicating again; the instant."""
        ...

    def set_policy(self, policy: str) -> None: ...
    def create_topics(self, region: str, topics: dict[str, int]) -> None: ...
    def inventory(self, region: str) -> dict: ...
    def end_offsets(self, region: str, topics: list[str]) -> dict[tuple[str, int], int]: ...
    def checkpoints(self) -> dict[tuple[str, str, int], int]: ...

    # --- faults -----------------------------------------------------------------------
    def apply_fault(self, spec: FaultSpec) -> tuple[str, float]: ...
    def clear_fault(self, fault_id: str) -> None: ...
    def clear_faults(self, fault_ids: list[str], final: bool = False) -> None:
        """Clear several in dependency order. `final`: the drill is over; a target about to
        release its environment may skip restarting what the faults stopped."""
        ...

    def fault_update(self, fault_id: str) -> dict:
        """What the stack update that applied `fault_id` reported, for the journal (when it
        started and returned, T_fault, the stack version); empty for a direct fault."""
        ...

    def open_faults(self, applier_pid: int) -> list[str]: ...
    def recover(self) -> list[str]:
        """Clear every fault left applied, by anyone (`kdrill recover`); one line each."""
        ...

    def fence(self, region: str) -> tuple[str, float]: ...
    def stop_replication(self) -> tuple[str, float]: ...

    # --- failback (drills/failback.py) -------------------------------------------------
    def reverse_topic(self, topic: str) -> str:
        """The old primary's name for a standby topic under the reverse flow."""
        ...

    def rebuild_topics(
        self, region: str, topics: dict[str, int], reverse_state: bool = False
    ) -> None:
        """Delete and recreate `topics` in `region` (empty), before reverse replication;
        `reverse_state`: forget where reverse replication was, so it copies from the start."""
        ...

    def start_reverse_replication(self, exactly_once: bool = False) -> float:
        """Replication from the standby into the old primary, proven running; the instant.
        `exactly_once`: transactional writes (a restart re-copies nothing)."""
        ...

    def stop_reverse_replication(self) -> float: ...
    def restart_reverse_replication(self) -> float:
        """Reverse replication running again after its region returned; the instant."""
        ...

    def reverse_running(self) -> bool: ...

    # --- measurement and evidence -----------------------------------------------------
    def region_out_bytes(self) -> dict[str, int]:
        """Bytes each region has sent to the other so far (a counter; the engine diffs)."""
        ...

    def cost_inventory(self) -> Inventory: ...
    def upload_evidence(self, run_dir: Path) -> str: ...
