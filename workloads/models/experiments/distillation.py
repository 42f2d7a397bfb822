"""Knowledge distillation of the Day-61 digits CNN into a small MLP (d61.e3 demo, d61.e4 temperature sweep).

A student run is the StudentMLP trained from scratch at one seed; the control (CE only) and every distilled
student of that seed share initialisation, shuffling and epochs, so differences are compared paired by seed.
torch is imported inside the runners.
"""

from __future__ import annotations

from pydantic import Field

from ailab.contract import Column, Context, Output, Series, Table
from workloads.models.experiments.common import Positive, Students, Timing


class DistillationParams(Students, Timing):
    temperature: Positive = Field(description="softmax temperature T of teacher and student")


class TemperatureSweepParams(Students):
    temperatures: list[Positive] = Field(min_length=1, description="temperatures T, one set of students each")


def _verdict_note(control: list[float], distilled: list[float], what: str) -> str:
    from workloads.models import distill_demo

    mean, se, word = distill_demo.paired_difference(control, distilled)
    return (
        f"{what} − control, paired by seed: {100 * mean:+.2f} pp (standard error {100 * se:.2f} pp over "
        f"{len(control)} seeds): {word} by the |mean| > 2·SE rule of thumb. One held-out image is 0.22 pp."
    )


def distillation(ctx: Context, p: DistillationParams) -> Output:
    """d61.e3: teacher CNN → student MLP from soft targets, against the same student trained on labels only."""
    from workloads.models import compress, distill_demo
    from workloads.models import compress_bench as bench

    temp, seeds, alpha, epochs = p.temperature, list(p.seeds), p.alpha, p.epochs
    batches, warmup, iters, rounds = list(p.batches), p.warmup, p.iters, p.rounds
    teacher = compress.teacher()
    control = {s: distill_demo.train_student(s, None, alpha, epochs) for s in seeds}
    distilled = {s: distill_demo.train_student(s, temp, alpha, epochs, teacher) for s in seeds}
    per_seed = Table.of(
        "students per seed",
        [("seed", ""), ("control (CE only)", "%"), (f"distilled (T={temp:g}, α={alpha:g})", "%"), ("difference", "pp")],
    )
    for s in seeds:
        c, d = control[s][1].accuracy, distilled[s][1].accuracy
        per_seed.add(s, 100 * c, 100 * d, 100 * (d - c))
    s0 = seeds[0]
    models = {
        "teacher CNN": teacher,
        "student MLP (control)": control[s0][0],
        "student MLP (distilled)": distilled[s0][0],
    }
    accs = {
        "teacher CNN": [compress.test_accuracy(teacher)],
        "student MLP (control)": [control[s][1].accuracy for s in seeds],
        "student MLP (distilled)": [distilled[s][1].accuracy for s in seeds],
    }
    variants = [bench.torch_variant(name, m) for name, m in models.items()]
    stats = bench.latencies(variants, batches, warmup, iters, rounds)
    cols = [("model", ""), ("parameters", "params"), ("state_dict", "KiB"), ("runs", "seeds")]
    cols += [("accuracy mean", "%"), ("accuracy std", "pp")] + [(f"p50 batch {b} (torch)", "µs") for b in batches]
    t = Table.of(
        "teacher vs students",
        cols,
        caption=f"Students: {epochs} epochs, Adam lr {distill_demo.STUDENT_LR}; latency of the seed-{s0} students; "
        "the teacher is the baseline CNN (one training, seed 0).",
    )
    for v in variants:
        mean, std = distill_demo.mean_std(accs[v.name])
        t.add(
            v.name,
            compress.param_count(models[v.name]),
            v.size_bytes / 1024,
            len(accs[v.name]),
            100 * mean,
            100 * std,
            *(stats[(v.key, b)].p50_us for b in batches),
        )
    out = Output(tables=[t, per_seed])
    out.notes += [
        f"loss = α·KL(teacher_T ‖ student_T)·T² + (1−α)·CE with T={temp:g}, α={alpha:g}; the control is the same "
        "student, seed, shuffling and epochs trained on CE alone.",
        _verdict_note(accs["student MLP (control)"], accs["student MLP (distilled)"], "Distilled"),
        bench.timing_note(warmup, iters, rounds),
    ]
    return out


def temperature_sweep(ctx: Context, p: TemperatureSweepParams) -> Output:
    """d61.e4: students distilled at each temperature, several seeds each: accuracy mean ± std vs the control."""
    from workloads.models import compress, distill_demo

    temps, seeds, alpha, epochs = list(p.temperatures), list(p.seeds), p.alpha, p.epochs
    teacher = compress.teacher()
    control = [distill_demo.train_student(s, None, alpha, epochs)[1].accuracy for s in seeds]
    by_t = {t: [distill_demo.train_student(s, t, alpha, epochs, teacher)[1].accuracy for s in seeds] for t in temps}
    table = Table.of(
        "student accuracy by distillation temperature",
        [
            ("temperature T", ""),
            ("seeds", "runs"),
            ("accuracy mean", "%"),
            ("accuracy std", "pp"),
            ("min", "%"),
            ("max", "%"),
            ("mean difference to control (paired)", "pp"),
            ("standard error of the difference", "pp"),
            ("verdict (|diff| > 2·SE)", ""),
        ],
        caption=f"Student MLP, α={alpha:g}, {epochs} epochs, seeds {seeds}; control = same student on CE only.",
    )
    mean_line = Series("student accuracy vs temperature", x=Column("temperature T", ""), y=Column("accuracy", "%"))
    mean_line.log_x = True
    c_mean, c_std = distill_demo.mean_std(control)
    table.add(
        "control (CE only)",
        len(seeds),
        100 * c_mean,
        100 * c_std,
        100 * min(control),
        100 * max(control),
        0.0,
        0.0,
        "reference",
    )
    for t, accs in by_t.items():
        mean, std = distill_demo.mean_std(accs)
        d, se, word = distill_demo.paired_difference(control, accs)
        table.add(
            f"{t:g}", len(seeds), 100 * mean, 100 * std, 100 * min(accs), 100 * max(accs), 100 * d, 100 * se, word
        )
        mean_line.point("distilled: mean", t, 100 * mean)
        mean_line.point("distilled: mean − std", t, 100 * (mean - std))
        mean_line.point("distilled: mean + std", t, 100 * (mean + std))
        mean_line.point("control (CE only): mean", t, 100 * c_mean)
    out = Output(tables=[table], series=[mean_line])
    best = max(by_t, key=lambda t: distill_demo.mean_std(by_t[t])[0])
    out.notes += [
        f"Highest mean at T={best:g}. " + _verdict_note(control, by_t[best], f"T={best:g}"),
        f"{sum(distill_demo.paired_difference(control, a)[2] == 'within noise' for a in by_t.values())} of "
        f"{len(by_t)} temperatures are within noise of the control (the verdict column says which): differences "
        "inside two standard errors should not be read as an effect of T.",
        f"Teacher (baseline CNN) held-out accuracy: {100 * compress.test_accuracy(teacher):.2f} %.",
    ]
    return out
