"""Off a terminal, progress is plain lines: one per epoch, at most one a minute otherwise."""

from __future__ import annotations

from bench.engine.context import RunContext
from bench.progress import LineProgress, interactive, progress


def test_off_a_terminal_progress_is_plain_lines(capsys) -> None:
    assert not interactive()  # pytest captures stderr: not a terminal
    assert isinstance(progress(range(3), desc="x"), LineProgress)
    assert list(progress(range(1000), desc="extracting", unit="cell")) == list(range(1000))
    err = capsys.readouterr().err
    assert err.splitlines() == [err.strip()] and err.startswith("extracting: 1000/1000 cell (")
    for _ in progress(range(3), desc="quiet", enabled=False):
        pass
    assert capsys.readouterr().err == ""
    with progress(total=2, desc="report", interval=0) as bar:  # the tqdm calls the harness uses
        bar.set_postfix_str("cmc")
        bar.update()
        bar.set_postfix({"k": 1})
        bar.update()
        bar.write("a line")
    assert capsys.readouterr().err.splitlines() == [
        "report: 1/2 it cmc (0 s)",
        "report: 2/2 it k 1 (0 s)",
        "a line",
    ]


def test_training_logs_one_line_per_epoch(capsys) -> None:
    ctx = RunContext(show_progress=True)
    for epoch in ctx.epochs(3):
        for _ in ctx.progress(range(50), desc=f"epoch {epoch + 1}"):
            pass
        ctx.log_epoch(epoch, loss=1.0 / (epoch + 1))
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(" (")[0] for line in lines] == [
        "train: 1/3 epoch loss 1",
        "train: 2/3 epoch loss 0.5",
        "train: 3/3 epoch loss 0.333",
    ]
    assert not any("\r" in line or "\x1b" in line for line in lines)
