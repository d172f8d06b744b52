"""What the benchmark scripts share: where the repository and the results folder are, the
machine and the load average that the numbers were measured on, timing, the spread of
repeated measurements and how a report shows it, option types, progress lines and writing a
report's JSON and Markdown.

Standard library only: TensorFlow, OpenCV and l2caf stay the business of the scripts that
need them (benchmarks/evaluation.py and report_page.py never load TensorFlow).
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUTPUT = os.path.join(REPO_ROOT, "benchmarks", "results")


def log(message: str) -> None:
    """Prints a progress line on stderr at once (stdout is for the report)."""
    print(message, file=sys.stderr, flush=True)


def command_line(script: str, argv: Sequence[str]) -> str:
    """The command that ran `script` (a file in benchmarks/) with `argv`, as a report shows
    it."""
    return " ".join(["python benchmarks/" + script] + list(argv))


def at_least(minimum: int, reason: str = "") -> Callable[[str], int]:
    """An argparse type: an integer of at least `minimum`; `reason` follows the minimum in
    the error message."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError("must be an integer, got %r" % text) from None
        if value < minimum:
            raise argparse.ArgumentTypeError("must be at least %d%s, got %d"
                                             % (minimum, reason, value))
        return value
    return parse


def fill_defaults(options: argparse.Namespace, defaults: Mapping[str, Any],
                  parsers: Optional[Mapping[str, Callable[[Any], Any]]] = None) -> None:
    """Sets each option in `defaults` that was not given (None) to its default, passed
    through `parsers[key]` where there is one."""
    for key, value in defaults.items():
        if getattr(options, key) is None:
            parse = (parsers or {}).get(key)
            setattr(options, key, parse(value) if parse else value)


def add_report_options(parser: argparse.ArgumentParser, full_defaults: Mapping[str, Any],
                       quick_defaults: Mapping[str, Any]) -> None:
    """Adds the options every benchmark that writes a report has, after its own: --repeats
    (its default from full_defaults), --gpu, --output and --quick (which takes
    quick_defaults)."""
    parser.add_argument("--repeats", type=int, metavar="N",
                        help="timed runs after the warm-up (default: %d)"
                             % full_defaults["repeats"])
    parser.add_argument("--gpu", type=int, default=0, metavar="INDEX",
                        help="GPU index (-1: the CPU) (default: %(default)s)")
    parser.add_argument("--output", default=DEFAULT_OUTPUT, metavar="DIR",
                        help="folder of the report files (default: benchmarks/results)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: %s" % ", ".join(
                            "%s %s" % item for item in quick_defaults.items()))


def parse_report_options(parser: argparse.ArgumentParser, argv: Optional[Sequence[str]],
                         full_defaults: Mapping[str, Any], quick_defaults: Mapping[str, Any],
                         positive: Sequence[str]) -> argparse.Namespace:
    """The options of `argv` (None: the command line's), those not given taken from
    quick_defaults with --quick, else from full_defaults; a parser error for each option in
    `positive` below 1."""
    options = parser.parse_args(argv)
    fill_defaults(options, quick_defaults if options.quick else full_defaults)
    for key in positive:
        if getattr(options, key) < 1:
            parser.error("--%s must be at least 1" % key)
    return options


def cpu_model(fallback: str = "") -> str:
    """The processor's name from /proc/cpuinfo; else platform.processor(), else `fallback`,
    else the machine type (platform.machine())."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or fallback or platform.machine()


def usable_cores() -> int:
    """The number of cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def machine(gpus: Optional[List[str]] = None, cpu_fallback: str = "",
            **versions: str) -> Dict[str, Any]:
    """The hardware and software the numbers were measured on: cpu, cores, memory_gb (one
    decimal), gpus (only where given), system, python, then `versions` (name: version) in
    their order. `cpu_fallback`: see cpu_model."""
    memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024.0 ** 3
    description = {"cpu": cpu_model(cpu_fallback), "cores": usable_cores(),
                   "memory_gb": round(memory_gb, 1)}
    if gpus is not None:
        description["gpus"] = gpus
    description.update(system=platform.platform(), python=platform.python_version())
    description.update(versions)
    return description


def describe_machine(machine: Mapping[str, Any], devices: Sequence[str]) -> str:
    """One line on the machine (a TensorFlow machine(): with gpus and tensorflow) and the
    devices the measurements ran on."""
    return ("device %s; %s, %d cores, %.0f GB memory, %s; TensorFlow %s, Python %s, %s"
            % (" and ".join(devices), machine["cpu"], machine["cores"], machine["memory_gb"],
               "GPU: " + ", ".join(machine["gpus"]) if machine["gpus"] else "no GPU",
               machine["tensorflow"], machine["python"], machine["system"]))


def load_average() -> Optional[float]:
    """The machine's load average over the last minute; None where the system has none."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


class Stopwatch(object):
    """The seconds and the load averages since it was made: other processes on the machine
    slow the measurements down, so a report gives the load at the start and at the end."""

    def __init__(self) -> None:
        self.load_at_start = load_average()
        self.started = time.perf_counter()

    def seconds(self) -> float:
        """Seconds since the start."""
        return time.perf_counter() - self.started

    def load_averages(self) -> List[Optional[float]]:
        """[load average at the start, load average now]."""
        return [self.load_at_start, load_average()]


def timed(function: Callable[[], Any], repeats: int) -> List[float]:
    """A warm-up call of `function`, then the seconds of each of `repeats` calls."""
    function()
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - started)
    return seconds


def spread(values: Sequence[float]) -> Dict[str, float]:
    """The median, min and max of repeated measurements."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def format_number(value: float) -> str:
    """Three significant digits, or a whole number from 100 on (never an exponent there)."""
    return "%.0f" % value if abs(value) >= 100 else "%.3g" % value


def format_spread(values: Mapping[str, float],
                  number: Callable[[float], str] = format_number) -> str:
    """A spread as 'median (min–max)', each written by `number`."""
    return "%s (%s–%s)" % (number(values["median"]), number(values["min"]),
                           number(values["max"]))


def write_report(folder: str, stem: str, report: Any, text: str, indent: int = 1,
                 json_newline: bool = False) -> Tuple[str, str]:
    """Writes `report` to folder/stem.json (with `indent`; a final newline if
    `json_newline`) and `text` to folder/stem.md, making the folder; returns both paths."""
    os.makedirs(folder, exist_ok=True)
    json_path, markdown_path = (os.path.join(folder, stem + extension)
                                for extension in (".json", ".md"))
    with open(json_path, "w") as stream:
        json.dump(report, stream, indent=indent)
        if json_newline:
            stream.write("\n")
    with open(markdown_path, "w") as stream:
        stream.write(text)
    return json_path, markdown_path
