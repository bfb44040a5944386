"""The text of ``bench_precision.py``'s page computed from its numbers: the verdict on
two speed ratios, the sentences of its Reading section, and the machine's CPU name and
native bf16 flags."""

from __future__ import annotations

import platform
import statistics


def verdict(x: float, y: float) -> str:
    """Words for two speed ratios (new / old) of the same change."""
    if min(x, y) > 1.05:
        return "faster"
    if max(x, y) < 0.95:
        return "slower"
    return "no clear difference"


def reading(summary: dict[str, dict], alt: dict[str, dict], rows: list[dict]) -> list[str]:
    """Sentences computed from this run's numbers (not fixed text)."""
    out = []
    for kind in ("pretrain", "finetune"):
        t, b = summary[kind], summary[f"{kind} bare"]
        a = alt.get(kind, {})
        line = (f"- **{kind}**: training runs at {t['ratio']:.2f}x the fp32 rate in bf16-mixed; "
                f"the bare step gains {b['ratio']:.2f}x")
        if a:
            line += f" ({a[('contiguous', 'on', 'ratio')]:.2f}x when they alternate in one process)"
        line += (f". The training run reaches {t['fp32'] / b['fp32']:.2f} (fp32) and "
                 f"{t['bf16'] / b['bf16']:.2f} (bf16) of the bare rate")
        if "data_fp32" in t:
            d = (t["data_fp32"] + t["data_bf16"]) / 2
            line += (f"; {d:.3f} s of a training step (median) passes between batches, loading "
                     "and augmenting data, which bf16 does not speed up")
            if a:
                c32 = t["batch"] / a[("contiguous", "on", "32-true")]
                c16 = t["batch"] / a[("contiguous", "on", "bf16-mixed")]
                line += (f". With that time and the alternating bare steps ({c32:.3f} s fp32, "
                         f"{c16:.3f} s bf16), training would gain {(d + c32) / (d + c16):.2f}x")
        out.append(line + ".")
    for kind, a in alt.items():
        if ("channels_last", "on", "ratio") in a:
            x = a[("channels_last", "on", "32-true")] / a[("contiguous", "on", "32-true")]
            y = a[("channels_last", "on", "bf16-mixed")] / a[("contiguous", "on", "bf16-mixed")]
            out.append(f"- channels_last, {kind} bare step (alternating in one process): "
                       f"{x:.2f}x the contiguous rate in fp32, {y:.2f}x in bf16: {verdict(x, y)}.")
    for kind, a in alt.items():
        on32, on16 = a[("contiguous", "on", "32-true")], a[("contiguous", "on", "bf16-mixed")]
        x, y = a[("contiguous", "off", "32-true")] / on32, a[("contiguous", "off", "bf16-mixed")] / on16
        u, v = (a[("contiguous", "on-nofill", "32-true")] / on32,
                a[("contiguous", "on-nofill", "bf16-mixed")] / on16)
        out.append(f"- deterministic mode, {kind} bare step (alternating in one process): "
                   f"turning it off gives {x:.2f}x in fp32 and {y:.2f}x in bf16 "
                   f"({verdict(x, y)}); keeping the deterministic algorithms but not the "
                   f"filling of new tensors gives {u:.2f}x and {v:.2f}x. bf16 / fp32 is "
                   f"{a[('contiguous', 'on', 'ratio')]:.2f} as the trainer runs, "
                   f"{a[('contiguous', 'off', 'ratio')]:.2f} without deterministic mode.")
    pairs = {}
    for r in rows:
        if r.get("bf16_over_fp32_pair", "") != "":
            pairs.setdefault(r["measure"], []).append(r["bf16_over_fp32_pair"])
    spread = max((max(v) - min(v) for v in pairs.values() if len(v) > 1), default=0.0)
    cpu_share = statistics.mean(r["median_step_cpu_s"] / r["median_step_s"] for r in rows)
    noise = (f"- Noise: the per-repeat bf16 / fp32 ratios of one measure differ by up to "
             f"{spread:.2f} between repeats. A step's CPU time was {cpu_share:.2f} of its wall "
             "time on average")
    if cpu_share > 0.95:
        noise += (": the process was seldom descheduled, so the other jobs slow it in ways "
                  "CPU time does not show (shared caches and memory, the host's scheduling of "
                  "the virtual CPUs) and the CSV's CPU-time rates are no steadier")
    out.append(noise + ". Ratios from steps alternating in one process see the same load and "
               "are the most trustworthy here.")
    return out + [""]


def cpu_bf16_flags() -> str:
    """The CPU's native bf16 flags, as :func:`planessl.engine.cpu_has_native_bf16` reads them."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    have = set(line.split(":", 1)[1].split())
                    found = [f for f in ("avx512_bf16", "amx_bf16") if f in have]
                    return ", ".join(found) if found else "no native bf16"
    except OSError:
        pass
    return "flags unknown"


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"
