"""The fake Palette API as a native child process, for tests and ``make run``."""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from pathlib import Path

from gateway.local.fake_palette.state import DEMO_PROJECT
from gateway.local.process import ManagedProcess, free_port

__all__ = ["FakePaletteServer"]


class FakePaletteServer:
    """``python -m gateway.local.fake_palette`` on a free loopback port; ready once it answers."""

    def __init__(
        self,
        *,
        api_key: str,
        project: str = DEMO_PROJECT,
        log_path: Path,
        port: int | None = None,
        projects: tuple[str, ...] = (),
        rate_limit: float = 0.0,
        admin: bool = False,
        spec_path: Path | None = None,
    ) -> None:
        self.port = port or free_port()
        argv = [sys.executable, "-m", "gateway.local.fake_palette", "--port", str(self.port)]
        self.api_key, self.project = api_key, project
        argv += [arg for p in (project, *projects) for arg in ("--project", p)]
        if rate_limit:
            argv += ["--rate-limit", str(rate_limit)]
        if admin:
            argv += ["--admin"]
        if spec_path is not None:
            argv += ["--validate-spec", str(spec_path)]
        self.process = ManagedProcess(argv, log_path=log_path, env={"PALETTE_API_KEY": api_key})

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        """The ``PALETTE_*`` variables that point the gateway at this fake."""
        return {
            "PALETTE_HOST": self.url,
            "PALETTE_API_KEY": self.api_key,
            "PALETTE_PROJECT_UID": self.project,
        }

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/v1/spectroclusters/probe", timeout=1):  # noqa: S310
                return True
        except urllib.error.HTTPError:
            return True  # 401 without a key: the server is up
        except (urllib.error.URLError, OSError):
            return False

    def start(self, timeout: float = 30.0) -> None:
        self.process.start_and_wait(self._answers, timeout=timeout, what=f"fake palette on port {self.port}")

    def stop(self) -> None:
        self.process.stop()
