import pytest
import torch
from markdown_tables import alignment, header, row_starting
from torch.utils.flop_counter import FlopCounterMode

from titn_lite.cli import main
from titn_lite.models.attention import keeping_attention_weights
from titn_lite.models.students import create_model
from titn_lite.results.flops import count_flops, format_table, measure_models


def test_flops_of_a_linear_layer_count_multiply_add_as_two():
    assert count_flops(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 5)),
                       img_size=4) == 2 * 48 * 5


@pytest.mark.parametrize("name", ["deit", "titn"])
def test_attention_flops_are_counted(name):
    # The written-out path's matmuls are what attention costs; the profile must see them
    # even though the fused CPU kernel is invisible to the flop counter.
    model = create_model(name, num_classes=10, depth=2).eval()
    images = torch.zeros(2, 3, 32, 32)
    counter = FlopCounterMode(display=False)
    with keeping_attention_weights(model), counter:
        model(images)
    assert count_flops(model) == counter.get_total_flops() / 2


def test_profile_matches_the_papers_table_3_within_two_percent():
    rows = {row.name: row for row in measure_models(["vit", "titn", "titn_large_patch"])}
    for row in rows.values():
        assert abs(row.gflops_per_512 / row.paper_gflops_per_512 - 1) < 0.02
        assert abs(row.params / 1e6 / row.paper_params_m - 1) < 0.01
    table = format_table(list(rows.values()))
    assert header(table) == ["model", "params (M)", "paper (M)", "ratio", "GFLOPs / image", "GFLOPs / 512",
                             "paper / 512", "ratio"]
    assert alignment(table) == "lrrrrrrr"
    assert row_starting(table, "titn")[:4] == ["titn", "5.853", "5.85", "1.000"]


def test_paper_figures_are_left_out_outside_the_papers_setting():
    (row,) = measure_models(["titn"], num_classes=10)
    assert row.paper_params_m is None and row_starting(format_table([row]), "titn")[:4] == ["titn", "5.818", "-", "-"]


def test_cli_profile_prints_the_table(capsys):
    assert main(["flops", "--models", "tnt,small_cnn"]) == 0
    out = capsys.readouterr().out
    assert row_starting(out, "tnt")[:4] == ["tnt", "5.832", "5.83", "1.000"] and row_starting(out, "small_cnn")


@pytest.mark.parametrize("argv,message", [
    (["flops", "--models", "vit,foo"], "unknown model or teacher 'foo'; valid: vit, deit"),
    (["flops", "--models", "vit", "--img-size", "30"], "image size 30 is not divisible by patch size 8"),
])
def test_cli_bad_input_exits_2_with_one_line(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1


@pytest.mark.parametrize("dataset", ["cifar100", "cifar10", "mnist"])
def test_the_paper_profile_runs_the_settings_the_ledger_says_the_paper_states(dataset):
    from titn_lite.results.paper import LEDGER, paper_profile_settings
    from titn_lite.train.config import TrainConfig

    fixed = paper_profile_settings(dataset)
    assert {"optimizer", "momentum", "weight_decay", "lr", "batch_size", "mix", "distill_alpha", "distill",
            "augmentation", "warmup_epochs"} <= set(fixed)
    resolved = TrainConfig(model="titn", dataset=dataset, profile="paper").resolved()
    for setting, value in fixed.items():
        assert getattr(resolved, setting) == value, f"{dataset}: {setting} is {getattr(resolved, setting)!r}"
    assert resolved.mix_alpha == 0.5  # §3.5.2 (used only where CutMix runs)
    assert {e.status for e in LEDGER} == {"stated", "open", "inconsistent"}
    assert all(e.where and e.paper and e.kit for e in LEDGER)


def test_the_ledger_prints_as_a_table_that_says_where_the_kit_chooses():
    from titn_lite.results.paper import LEDGER, format_ledger

    table = format_ledger()
    assert table.count("\n") == len(LEDGER) + 1
    assert header(table) == ["topic", "the paper says", "where", "the kit does"] and alignment(table) == "llll"
    assert "§3.5.2" in row_starting(table, "CutMix alpha")[2]
    assert "chooses: a LayerNorm and a Linear layer per token" in table
    assert "*inconsistent:*" in table and "*not stated:*" in table
