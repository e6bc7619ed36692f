"""Generates the gRPC stubs from the repository's proto/ while the package is built.

The stubs (`diplog/v1/*_pb2.py`, `*_pb2_grpc.py` and their `.pyi`) are written into the build
directory only, never into the source tree, so they are never committed and always match the
protos the package was built from. The protos are looked for in `$DIPLOG_PROTO_DIR`, then in
`proto/` beside this file (an sdist carries a copy there), then in `../../proto` (building from
the repository, e.g. `pip install ./clients/python`).
"""

import os
import shutil
from pathlib import Path

from setuptools import Command, setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

HERE = Path(__file__).resolve().parent


def proto_root() -> Path:
    candidates = [os.environ.get("DIPLOG_PROTO_DIR"), HERE / "proto", HERE.parent.parent / "proto"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "diplog" / "v1").is_dir():
            return Path(candidate)
    raise RuntimeError(
        "diplog's protos were not found: build from the repository (clients/python), "
        "or set DIPLOG_PROTO_DIR to its proto/ directory"
    )


def generate(out: Path) -> None:
    import grpc_tools
    from grpc_tools import protoc

    root = proto_root()
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    protos = sorted(str(p.relative_to(root)) for p in (root / "diplog" / "v1").glob("*.proto"))
    out.mkdir(parents=True, exist_ok=True)
    args = [
        "grpc_tools.protoc",
        f"-I{root}",
        f"-I{well_known}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise RuntimeError(f"protoc failed on {root}")
    # protoc writes diplog/v1/…, which is this package's `diplog.v1` subpackage: the generated
    # `from diplog.v1 import log_pb2` then resolves inside it.
    (out / "diplog" / "v1" / "__init__.py").write_text('"""Generated from proto/diplog/v1."""\n')


class BuildWithStubs(build_py):
    def run(self) -> None:
        super().run()
        generate(Path(self.build_lib))


class GenerateStubs(Command):
    """`python setup.py generate_stubs`: the stubs into the source tree, for working on the
    package in place (they are git-ignored)."""

    user_options: list = []

    def initialize_options(self) -> None:
        pass

    def finalize_options(self) -> None:
        pass

    def run(self) -> None:
        generate(HERE)


class SdistWithProtos(sdist):
    def make_release_tree(self, base_dir, files) -> None:
        super().make_release_tree(base_dir, files)
        shutil.copytree(proto_root(), Path(base_dir) / "proto", dirs_exist_ok=True)


setup(
    cmdclass={
        "build_py": BuildWithStubs,
        "generate_stubs": GenerateStubs,
        "sdist": SdistWithProtos,
    }
)
