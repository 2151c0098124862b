"""Type stub for the compiled vote kernel (_votes.c)."""

import numpy as np

def search(
    queries: np.ndarray,
    centres: np.ndarray,
    codes: np.ndarray,
    ids: np.ndarray,
    offsets: np.ndarray,
    nprobe: int,
    k: int,
    path: str | None = None,
) -> tuple[np.ndarray, np.ndarray]: ...
def assign(x: np.ndarray, centres: np.ndarray) -> np.ndarray: ...
def cross(
    query: np.ndarray, train: np.ndarray, limit: int, path: str | None = None
) -> tuple[np.ndarray, np.ndarray]: ...
def paths() -> list[str]: ...
def distances(a: np.ndarray, b: np.ndarray, path: str | None = None) -> np.ndarray: ...
