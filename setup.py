"""Build the compiled kernels (C extensions). Everything else lives in pyproject.toml."""

from pathlib import Path

import numpy
from setuptools import Extension, setup

HERE = Path(__file__).parent


def kernels() -> list[Extension]:
    exts = []
    mih = HERE / "src" / "childguard" / "index" / "_mih.c"
    if mih.exists():
        exts.append(
            Extension(
                "childguard.index._mih",
                sources=[str(mih.relative_to(HERE))],
                include_dirs=[numpy.get_include()],
                extra_compile_args=["-O3", "-march=x86-64-v2", "-std=c11"],
            )
        )
    jpegdc = HERE / "src" / "childguard" / "_jpegdc.c"
    if jpegdc.exists():
        exts.append(
            Extension(
                "childguard._jpegdc",
                sources=[str(jpegdc.relative_to(HERE))],
                include_dirs=[numpy.get_include()],
                extra_compile_args=["-O3", "-march=x86-64-v2", "-std=c11"],
            )
        )
    votes = HERE / "src" / "childguard" / "robust" / "_votes.c"
    if votes.exists():
        exts.append(
            Extension(
                "childguard.robust._votes",
                sources=[str(votes.relative_to(HERE))],
                include_dirs=[numpy.get_include()],
                extra_compile_args=["-O3", "-march=x86-64-v2", "-std=c11"],
            )
        )
    return exts


setup(ext_modules=kernels())
