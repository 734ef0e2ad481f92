"""Find a secret anywhere: in text, in any file's bytes, in what a Prefect server stores (README guarantee 6).

The needles of a key are every form it could leak in: the mnemonic and every run of three of its
consecutive words, the 32-byte seed and the 64-byte private key as hex (lower, upper, with and without
0x) and as raw bytes, their first 16 bytes as hex (a truncated print), and the keyfile password.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Needles:
    labelled: dict[str, bytes] = field(default_factory=dict)  # what it is -> exact bytes to look for

    def add_key(self, label: str, mnemonic: str, seed: bytes, private_key: bytes) -> None:
        self.labelled[f"{label} mnemonic"] = mnemonic.encode()
        words = mnemonic.split()
        for i in range(len(words) - 2):
            self.labelled[f"{label} mnemonic words {i + 1}-{i + 3}"] = " ".join(words[i:i + 3]).encode()
        for name, secret in (("seed", seed), ("private key", private_key)):
            self.labelled[f"{label} {name} raw"] = secret
            for case in (str.lower, str.upper):
                self.labelled[f"{label} {name} hex {case.__name__}"] = case(secret.hex()).encode()
                self.labelled[f"{label} {name} first 16 bytes hex {case.__name__}"] = case(secret[:16].hex()).encode()

    def add_text(self, label: str, text: str) -> None:
        self.labelled[label] = text.encode()

    def found_in(self, data: bytes) -> list[str]:
        """Labels of the needles in `data` (hex needles also match in mixed case: lower-cased compare)."""
        lowered = data.lower()
        return [label for label, needle in self.labelled.items()
                if needle in data or (" hex " in label and needle.lower() in lowered)]


@dataclass
class ScanReport:
    files: int = 0
    bytes: int = 0
    texts: int = 0
    findings: list[tuple[str, list[str]]] = field(default_factory=list)

    def check(self, where: str, data: bytes | str, needles: Needles) -> None:
        data = data.encode() if isinstance(data, str) else data
        self.texts += 1
        self.bytes += len(data)
        found = needles.found_in(data)
        if found:
            self.findings.append((where, found))

    def check_tree(self, root: Path, needles: Needles, *, skip: tuple[Path, ...] = ()) -> None:
        for path in sorted(root.rglob("*")):
            if not path.is_file() or any(path.is_relative_to(s) for s in skip):
                continue
            self.files += 1
            self.check(str(path), path.read_bytes(), needles)


async def prefect_records(api_url: str) -> dict[str, str]:
    """Everything the Prefect server holds about the session's runs, as text: flow and task runs (names,
    parameters, state messages), logs, artifacts and variables."""
    from prefect.client.orchestration import get_client

    records: dict[str, str] = {}
    async with get_client() as client:
        assert str(client.api_url).rstrip("/") == api_url.rstrip("/"), (client.api_url, api_url)
        for run in await client.read_flow_runs(limit=200):
            records[f"flow run {run.name}"] = run.model_dump_json()
        for task_run in await client.read_task_runs(limit=200):
            records[f"task run {task_run.name}"] = task_run.model_dump_json()
        offset = 0
        while True:
            logs = await client.read_logs(limit=200, offset=offset)
            for entry in logs:
                records[f"log {entry.id}"] = entry.model_dump_json()
            if len(logs) < 200:
                break
            offset += 200
        for artifact in await client.read_artifacts(limit=200):
            records[f"artifact {artifact.key}"] = artifact.model_dump_json()
        for variable in await client.read_variables(limit=200):
            records[f"variable {variable.name}"] = variable.model_dump_json()
    return records
