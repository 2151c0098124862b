"""Type stub for the compiled MIH kernels (_mih.c)."""

import numpy as np

def build_table(
    hashes: np.ndarray, table: int, prefix_bits: int, row_bytes: int, inline_bits: int
) -> tuple[np.ndarray, np.ndarray]: ...
def search(
    hashes: np.ndarray,
    ids: np.ndarray,
    offsets: np.ndarray,
    bases: np.ndarray,
    rows: np.ndarray,
    row_bytes: int,
    prefix_bits: int,
    inline_bits: int,
    dead: np.ndarray | None,
    delta_hashes: np.ndarray,
    delta_ids: np.ndarray,
    queries: np.ndarray,
    radius: int,
    mode: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...
