"""Run options are declared once (rig.options): ``bmsrig run`` and the pytest plugin expose
the same options with the same defaults, choices and types, and the CLI forwards every one."""

import argparse

import pytest

import fixtures.plugin as plugin
from rig import options
from rig.cli import build_parser


class _Recorder:
    """Stands in for pytest's parser and option group: records every ``addoption``."""

    def __init__(self):
        self.added: dict[str, dict] = {}

    def getgroup(self, name, description=""):
        return self

    def addoption(self, flag, **kw):
        self.added[flag] = kw


def _pytest_options() -> dict[str, dict]:
    rec = _Recorder()
    plugin.pytest_addoption(rec)
    return rec.added


def _run_subparser() -> argparse.ArgumentParser:
    ap = build_parser()
    sub = next(a for a in ap._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["run"]


def _cli_actions() -> dict[str, argparse.Action]:
    return {flag: a for a in _run_subparser()._actions for flag in a.option_strings}


def test_both_clis_expose_every_shared_option_with_the_same_default():
    py = _pytest_options()
    cli = _cli_actions()
    shared = [o.flag for o in options.RUN_OPTIONS]
    assert set(shared) <= set(py) and set(shared) <= set(cli)
    for flag in shared:
        assert py[flag]["default"] == cli[flag].default, flag
        assert py[flag].get("choices") == (list(cli[flag].choices) if cli[flag].choices else None), flag
        assert py[flag].get("type") == cli[flag].type, flag
        assert py[flag]["help"] == cli[flag].help, flag
    # the plugin's own options are the only ones the CLI does not take
    assert set(py) - set(shared) == {o.flag for o in options.PLUGIN_OPTIONS}


def test_defaults_are_the_documented_ones(monkeypatch):
    monkeypatch.setenv("USER", "ada")
    py = _pytest_options()
    cli = _cli_actions()
    assert py["--operator"]["default"] == cli["--operator"].default == "ada"
    assert py["--board"]["default"] == "reference-16s-lfp"
    assert py["--seed"]["default"] == 1 and py["--decision-rule"]["default"] == "guarded"
    assert py["--defect"]["default"] == [] and cli["--defect"].default == []
    monkeypatch.delenv("USER")
    monkeypatch.delenv("USERNAME", raising=False)
    assert _pytest_options()["--operator"]["default"] == "not stated"


def test_the_cli_forwards_every_shared_option_to_the_plugin():
    typed = ["run", "--rig", "lab.yaml", "--board", "b.yaml", "--defect", "hvc_delay:s=3", "--defect",
             "adc_offset:cell=2,mv=4", "--seed", "7", "--board-model", "m:C", "--decision-rule", "simple",
             "--lab", "L", "--location", "X", "--requester", "R", "--operator", "O"]
    args = build_parser().parse_args(typed)
    argv = options.forward_argv(args, {"board": "/abs/b.yaml"})
    plugin_side = argparse.ArgumentParser()
    options.add_argparse(plugin_side, options.RUN_OPTIONS + options.PLUGIN_OPTIONS)
    got = plugin_side.parse_args(argv)
    for opt in options.RUN_OPTIONS:
        want = "/abs/b.yaml" if opt.dest == "board" else getattr(args, opt.dest)
        assert getattr(got, opt.dest) == want, opt.flag
    assert got.seed == 7 and got.defect == ["hvc_delay:s=3", "adc_offset:cell=2,mv=4"]


def test_defaults_forward_as_defaults():
    args = build_parser().parse_args(["run"])
    plugin_side = argparse.ArgumentParser()
    options.add_argparse(plugin_side, options.RUN_OPTIONS)
    got = plugin_side.parse_args(options.forward_argv(args))
    defaults = plugin_side.parse_args([])
    assert vars(got) == vars(defaults)


def test_check_takes_the_same_rig_and_board_options():
    ap = build_parser()
    args = ap.parse_args(["check"])
    assert args.board == "reference-16s-lfp" and args.rig is None


@pytest.mark.parametrize("opt", options.RUN_OPTIONS, ids=lambda o: o.flag)
def test_every_option_has_help(opt):
    assert opt.help and opt.flag.startswith("--")
