"""``make demo`` / ``speechsep demo``: separate the bundled real example with the default bundled model."""

from __future__ import annotations

import time
from pathlib import Path

from speechsep.inference.bundling import bundled_example

__all__ = ["run_demo"]


def run_demo(out_dir: str | Path, model_name: str | None = None) -> int:
    from speechsep.inference.pretrained import default_name, resolve
    from speechsep.inference.separate import separate_files

    example = bundled_example()
    name = model_name or default_name()
    model = resolve(name, device="auto")
    kind = f"causal, {model.latency_ms:.0f} ms latency" if model.is_causal else "non-causal"
    print(f"model: {name} ({model.family}, {kind}, {model.sample_rate} Hz)")
    print(f"input: {example.mixture} ({example.description}; speakers never heard in training)")
    start = time.perf_counter()
    [result] = separate_files([example.mixture], out_dir, model, refs=list(example.references))
    took = time.perf_counter() - start
    print(f"separated {result.seconds:.1f} s of audio in {took:.2f} s")
    print(f"SI-SNRi: {sum(result.si_snri) / len(result.si_snri):.2f} dB "
          f"(per speaker: {', '.join(f'{v:.2f}' for v in result.si_snri)})")
    out = Path(out_dir).resolve()
    print(f"wrote {', '.join(p.name for p in result.sources)} and {result.spectrogram.name} to {out}")
    print("next: speechsep separate YOUR.wav -o OUTDIR   |   speechsep serve  (live, in the browser)")
    return 0
