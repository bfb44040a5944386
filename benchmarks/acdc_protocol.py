"""The ACDC few-label protocols of the benchmarks: which patients test, validate, label and
pretrain.

ACDC's training patients are ordered by diagnosis, 20 per group: 001-020 dilated
cardiomyopathy (DCM), 021-040 hypertrophic cardiomyopathy (HCM), 041-060 previous myocardial
infarction (MINF), 061-080 normal (NOR), 081-100 abnormal right ventricle (ARV). The shared
data holds 001-064 and 085-100 (065-084 are kept out).

**Stratified** (the default since the protocol issue; as Chaitanya et al., NeurIPS 2020, and
the SSL4MIS benchmark: test patients from every group):

- test: 4 patients of each group, 20 patients / 40 volumes (ED, ES): 007-010 (DCM), 027-030
  (HCM), 047-050 (MINF), 061-064 (NOR, the only normal hearts here), 087-090 (ARV);
- validation (checkpoint choice only): 5 fixed patients, one of each group that has patients
  left (DCM, HCM, MINF, ARV) plus one more from DCM, each the first of its group in an order
  drawn with seed 0;
- labelled pool: the next 5 patients of each of those 4 groups in the same order (20 patients);
  N labelled patients are drawn from it per seed (nested: N=1 within N=3 within N=7);
- unlabelled pretraining pool: every other patient (35; their labels are never read).

**Earlier** (ARV-only test, kept to reproduce the earlier tables): test 085-100, validation 5
and pool 20 drawn from 001-064 with split seed 0, pretraining on the other 39.
"""

from __future__ import annotations

import numpy as np

GROUPS = (("DCM", 1, 20), ("HCM", 21, 40), ("MINF", 41, 60), ("NOR", 61, 80), ("ARV", 81, 100))
AVAILABLE = tuple(range(1, 65)) + tuple(range(85, 101))
STRATIFIED_TEST = ((7, 8, 9, 10), (27, 28, 29, 30), (47, 48, 49, 50), (61, 62, 63, 64),
                   (87, 88, 89, 90))
POOL_PER_GROUP = 5
PROTOCOLS = ("stratified", "earlier")


def group_of(number: int) -> str:
    """The ACDC diagnostic group of training patient ``number`` (1-100)."""
    for name, lo, hi in GROUPS:
        if lo <= number <= hi:
            return name
    raise ValueError(f"ACDC training patients are 1-100, got {number}")


def stratified_numbers(seed: int = 0) -> dict[str, list[int]]:
    """Patient numbers of each role of the stratified protocol (see the module docstring)."""
    test = sorted(k for group in STRATIFIED_TEST for k in group)
    rng = np.random.default_rng(seed)
    order: dict[str, list[int]] = {}
    for name, lo, hi in GROUPS:
        left = [k for k in AVAILABLE if lo <= k <= hi and k not in test]
        if left:
            order[name] = [left[i] for i in rng.permutation(len(left))]
    val = [ks[0] for ks in order.values()] + [order["DCM"][1]]
    taken = set(test) | set(val)
    pool = [k for ks in order.values() for k in [k for k in ks if k not in taken][:POOL_PER_GROUP]]
    rest = [k for k in AVAILABLE if k not in taken and k not in pool]
    return {"test": test, "val": sorted(val), "pool": sorted(pool), "pretrain": rest}


def earlier_test_numbers() -> list[int]:
    return list(range(85, 101))


def protocol_overrides(protocol: str = "stratified") -> list[str]:
    """The fine-tuning ``split.*`` overrides of a protocol."""
    from planessl.io.acdc import patient_id

    def ids(numbers):
        return "[" + ",".join(patient_id(k) for k in numbers) + "]"

    if protocol == "earlier":
        return [f"split.test_ids={ids(earlier_test_numbers())}", "split.pool_size=20",
                "split.val_size=5"]
    if protocol != "stratified":
        raise ValueError(f"unknown protocol {protocol!r}; one of {', '.join(PROTOCOLS)}")
    roles = stratified_numbers()
    return [f"split.test_ids={ids(roles['test'])}", f"split.val_ids={ids(roles['val'])}",
            f"split.pool_ids={ids(roles['pool'])}"]


def group_of_id() -> dict[str, str]:
    """Cache id -> diagnostic group, for every ACDC training patient."""
    from planessl.io.acdc import patient_id

    return {patient_id(k): group_of(k) for k in range(1, 101)}
