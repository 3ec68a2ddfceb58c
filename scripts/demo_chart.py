"""Draws device 1's raw series beside its LTTB and M4 downsampling (scripts/demo.sql wrote
the CSV files) into one PNG."""
import csv
import sys
from datetime import datetime

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def load(path):
    times, values = [], []
    with open(path, newline="") as f:
        for ts, value in csv.reader(f):
            times.append(datetime.fromisoformat(ts.replace("+00", "+00:00")))
            values.append(float(value))
    return times, values


def main(directory, output):
    series = [
        ("raw", f"{directory}/demo_raw.csv", "tab:gray"),
        ("LTTB, n = 1000", f"{directory}/demo_lttb.csv", "tab:blue"),
        ("M4, width = 1000", f"{directory}/demo_m4.csv", "tab:red"),
    ]
    fig, axes = plt.subplots(len(series), 1, figsize=(14, 9), sharex=True, sharey=True)
    for ax, (label, path, color) in zip(axes, series):
        times, values = load(path)
        ax.plot(times, values, color=color, linewidth=0.5)
        ax.set_title(f"device 1, {label}: {len(values):,} points", loc="left", fontsize=10)
        ax.grid(alpha=0.3)
    fig.suptitle("plwasm: downsampling 2,000,000 points at query time")
    fig.tight_layout()
    fig.savefig(output, dpi=110)
    print(f"chart written to {output}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
