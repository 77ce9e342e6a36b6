"""The batch path of the paper's augmentation (titn_lite.data.augment) against the reference,
train_transform(info, "paper") run one image at a time: its AutoAugment policy is
torchvision's; fed the parameters torchvision drew, it gives the same images; over many draws
its parameters follow torchvision's distributions. And the package uses torchvision's public
API only, importing it lazily.

The tests may look inside torchvision (its private policy table, its AutoAugment kernel's
dispatch) to record and compare; the package itself may not."""

import ast
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from scipy import stats
from torchvision.transforms import v2

from titn_lite.data import augment
from titn_lite.data.augment import CIFAR10_POLICY, CifarDraw, MnistDraw, PaperAugmentation
from titn_lite.data.datasets import (
    dataset_info,
    flip_where,
    load_tensors,
    pad_and_crop,
    random_crop_offsets,
    random_flips,
    train_transform,
)

CIFAR, MNIST = dataset_info("cifar10"), dataset_info("fashion-mnist-mini")


@pytest.fixture(scope="module")
def grey():
    return load_tensors("fashion-mnist-mini", train=True).images[:240]


@pytest.fixture(scope="module")
def rgb(grey):
    return torch.cat([grey, grey.flip(-1), grey.flip(-2)], dim=1)  # three different channels


# --- the reference, recording what it drew -------------------------------------------------

class _RecordingList(list):
    def __init__(self, items, log):
        super().__init__(items)
        self.log = log

    def __getitem__(self, index):
        self.log.append(int(index))
        return super().__getitem__(index)


def reference(info, images):
    """train_transform(info, "paper") on each uint8 image (its ToImage and Resize already done
    by the split, its ToDtype and Normalize left off), and the parameters it drew."""
    steps = train_transform(info, "paper").transforms[2:-2]
    record = {}
    for step in steps:
        if isinstance(step, v2.AutoAugment):
            policies, ops = [], []
            step._policies = _RecordingList(step._policies, policies)
            original = step._apply_image_or_video_transform

            def apply(image, name, magnitude, *args, _original=original, _ops=ops, **kwargs):
                _ops[-1].append((name, magnitude))
                return _original(image, name, magnitude, *args, **kwargs)
            step._apply_image_or_video_transform = apply
            record["AutoAugment"] = (policies, ops)
        elif isinstance(step, v2.RandomHorizontalFlip):
            flips = record["flip"] = []
            original = step.transform

            def transform(inpt, params, _original=original, _flips=flips):
                _flips[-1] = True
                return _original(inpt, params)
            step.transform = transform
        else:
            log = record[type(step).__name__] = []
            original = step.make_params

            def make_params(flat, _original=original, _log=log):
                params = _original(flat)
                _log.append(params)
                return params
            step.make_params = make_params
    outputs = []
    for image in images:
        if "AutoAugment" in record:
            record["AutoAugment"][1].append([])
            record["flip"].append(False)
        for step in steps:
            image = step(image)
        outputs.append(torch.as_tensor(image))
    return torch.stack(outputs), record


def _magnitude(slot):
    name, _, index = slot
    values = v2.AutoAugment._AUGMENTATION_SPACE[name][0](10, 32, 32)
    return 0.0 if values is None else float(values[index])


def cifar_draw_of(record, policies):
    chosen, done_ops = record["AutoAugment"]
    applied, negated = [], []
    for policy, done in zip(chosen, done_ops, strict=True):
        sub = policies[policy]
        if len(done) == 2:
            slots = [0, 1]
        elif len(done) == 1:  # which slot: the one whose operation and magnitude it was
            name, magnitude = done[0]
            slots = [0] if name == sub[0][0] and math.isclose(abs(magnitude), _magnitude(sub[0])) else [1]
        else:
            slots = []
        applied.append([slot in slots for slot in (0, 1)])
        negated.append([False, False])
        for slot, (_, magnitude) in zip(slots, done, strict=True):
            signed = v2.AutoAugment._AUGMENTATION_SPACE[sub[slot][0]][1]
            negated[-1][slot] = math.copysign(1.0, magnitude) < 0 and signed
    crops = record["RandomCrop"]
    return CifarDraw(torch.tensor(chosen), torch.tensor(applied), torch.tensor(negated),
                     torch.tensor([c["top"] for c in crops]), torch.tensor([c["left"] for c in crops]),
                     torch.tensor(record["flip"]))


def mnist_draw_of(record):
    crops, rotations, affines, jitters = (record[k] for k in
                                          ("RandomCrop", "RandomRotation", "RandomAffine", "ColorJitter"))
    order = [p["fn_idx"].tolist().index(0) < p["fn_idx"].tolist().index(1) for p in jitters]
    return MnistDraw(torch.tensor([c["top"] for c in crops]), torch.tensor([c["left"] for c in crops]),
                     torch.tensor([r["angle"] for r in rotations], dtype=torch.float64),
                     torch.tensor([list(a["translate"]) for a in affines]),
                     torch.tensor([a["scale"] for a in affines], dtype=torch.float64),
                     torch.tensor([p["brightness_factor"] for p in jitters], dtype=torch.float64),
                     torch.tensor([p["contrast_factor"] for p in jitters], dtype=torch.float64), torch.tensor(order))


# --- the policy is torchvision's ----------------------------------------------------------------

def test_the_cifar10_policy_table_is_torchvisions():
    autoaugment = v2.AutoAugment(v2.AutoAugmentPolicy.CIFAR10)
    assert [tuple(map(tuple, sub)) for sub in autoaugment._policies] == list(CIFAR10_POLICY)
    space = v2.AutoAugment._AUGMENTATION_SPACE
    for name in space:  # every operation at every bin, on two image sizes (translations scale with the side)
        assert augment.takes_a_sign(name) == space[name][1], name
        for height, width in ((32, 32), (28, 40)):
            values = space[name][0](augment.MAGNITUDE_BINS, height, width)
            for magnitude_bin in range(augment.MAGNITUDE_BINS):
                expected = 0.0 if values is None else float(values[magnitude_bin])
                got = augment.operation_magnitude(name, magnitude_bin, height, width)
                assert got == expected, (name, magnitude_bin, height, width)


def test_each_operation_of_the_policy_is_torchvisions_kernel_on_a_batch(rgb):
    """Every (operation, magnitude, sign) the policy can apply, on a batch at once, against
    v2.AutoAugment's own kernel on each image."""
    autoaugment = v2.AutoAugment(v2.AutoAugmentPolicy.CIFAR10)
    images = rgb[:6]
    operations = {(name, magnitude_bin) for sub in CIFAR10_POLICY for name, _, magnitude_bin in sub}
    assert len(operations) > 20
    for name, magnitude_bin in sorted(operations, key=repr):
        magnitude = augment.operation_magnitude(name, magnitude_bin, 32, 32)
        for sign in (1.0, -1.0) if augment.takes_a_sign(name) else (1.0,):
            got = augment.autoaugment_operation(images, name, sign * magnitude)
            for image, out in zip(images, got, strict=True):
                expected = autoaugment._apply_image_or_video_transform(
                    image, name, sign * magnitude, interpolation=autoaugment.interpolation, fill=autoaugment._fill)
                assert torch.equal(out, expected), (name, magnitude_bin, sign)


# --- the same images for the same draw ---------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1])
def test_cifar_batch_path_gives_the_reference_images_for_its_draws(rgb, seed):
    torch.manual_seed(seed)
    expected, record = reference(CIFAR, rgb)
    augmentation = PaperAugmentation(CIFAR)
    draw = cifar_draw_of(record, augmentation.policies)
    assert draw.applied.any(1).float().mean() > 0.5  # the operations were exercised
    assert torch.equal(augmentation.apply(rgb, draw), expected)


@pytest.mark.parametrize("seed", [0, 1])
def test_mnist_batch_path_gives_the_reference_images_for_its_draws(grey, seed):
    torch.manual_seed(seed)
    expected, record = reference(MNIST, grey)
    got = PaperAugmentation(MNIST).apply(grey, mnist_draw_of(record))
    difference = (got.int() - expected.int()).abs()
    # Equal on this CPU; the colour jitter's float rounding may put a rare pixel one level off elsewhere.
    assert difference.max() <= 1 and (difference > 0).float().mean() < 1e-4


def test_crop_and_flip_are_torchvisions_on_the_pil_image(rgb):
    from PIL import Image

    top, left = torch.tensor([0, 8, 3, 5]), torch.tensor([8, 0, 4, 1])
    flip = torch.tensor([True, False, True, False])
    got = flip_where(pad_and_crop(rgb[:4], 4, top, left), flip)
    for i in range(4):
        pil = Image.fromarray(rgb[i].permute(1, 2, 0).numpy())
        pil = v2.functional.crop(v2.functional.pad(pil, [4]), int(top[i]), int(left[i]), 32, 32)
        if flip[i]:
            pil = v2.functional.horizontal_flip(pil)
        assert torch.equal(got[i], v2.functional.pil_to_tensor(pil))


def test_rotation_and_affine_matrices_are_torchvisions(grey):
    images = grey[:6]
    angle = torch.tensor([-10.0, -3.3, 0.0, 0.7, 7.25, 10.0], dtype=torch.float64)
    translate = torch.tensor([[-3, 2], [0, 0], [3, -3], [1, 1], [-2, 0], [0, 3]])
    scale = torch.tensor([0.9, 1.1, 1.0, 0.95, 1.05, 0.9123], dtype=torch.float64)
    rotated = augment.warp(images, augment.inverse_affine_matrices(-(angle % 360), torch.zeros(6, 2), torch.ones(6)))
    moved = augment.warp(images, augment.inverse_affine_matrices(torch.zeros(6), translate, scale))
    for i in range(6):
        assert torch.equal(rotated[i], v2.functional.rotate(images[i], float(angle[i]), fill=0))
        assert torch.equal(moved[i], v2.functional.affine(images[i], angle=0.0, translate=translate[i].tolist(),
                                                          scale=float(scale[i]), shear=[0.0, 0.0], fill=0))
        # and the PIL kernel, within interpolation tolerance: its nearest neighbour rounds ties its own way
        pil = v2.functional.to_pil_image(images[i])
        by_pil = v2.functional.pil_to_tensor(v2.functional.rotate(pil, float(angle[i]), fill=0))
        assert (by_pil.int() - rotated[i].int()).abs().gt(0).float().mean() < 0.1


# --- the same distributions over many draws ----------------------------------------------------

def reference_draws(info, n, seed):
    torch.manual_seed(seed)
    image = torch.zeros(info.in_chans, 32, 32, dtype=torch.uint8)
    _, record = reference(info, [image] * n)
    augmentation = PaperAugmentation(info)
    return cifar_draw_of(record, augmentation.policies) if info.recipe == "cifar" else mnist_draw_of(record)


def same_categories(a, b):
    """p of a chi-square test that two samples of categories come from one distribution."""
    categories = sorted(set(a) | set(b))
    table = [[list(a).count(c) for c in categories], [list(b).count(c) for c in categories]]
    return stats.chi2_contingency(table).pvalue


def image_outcomes(draw, policies):
    """Each image's sub-policy and the (operation, magnitude index, sign) it applied."""
    outcomes = []
    for policy, applied, negated in zip(draw.policy.tolist(), draw.applied.tolist(), draw.negated.tolist(),
                                        strict=True):
        done = sorted(repr((policies[policy][s][0], policies[policy][s][2], negated[s])) for s in (0, 1) if applied[s])
        outcomes.append(repr((policy, done)))
    return outcomes


def test_cifar_draws_follow_torchvisions_distributions():
    augmentation = PaperAugmentation(CIFAR)
    ours = augmentation.draw(20_000, torch.Generator().manual_seed(0))
    theirs = reference_draws(CIFAR, 3000, seed=0)
    policies = augmentation.policies
    assert same_categories(ours.policy.tolist(), theirs.policy.tolist()) > 1e-3
    assert stats.chisquare(torch.bincount(ours.policy, minlength=25).tolist()).pvalue > 1e-3  # uniform sub-policies
    # What each image got: its sub-policy and the operations applied, with their signs (as a
    # set: where both slots hold one operation, the reference does not say which one it did).
    assert same_categories(image_outcomes(ours, policies), image_outcomes(theirs, policies)) > 1e-3
    for slot in (0, 1):
        rate = torch.tensor([sub[slot][1] for sub in policies])[ours.policy].mean()
        assert abs(ours.applied[:, slot].float().mean() - rate) < 0.01
    for field in ("top", "left"):
        assert set(getattr(ours, field).tolist()) == set(range(9))
        assert same_categories(getattr(ours, field).tolist(), getattr(theirs, field).tolist()) > 1e-3
    assert abs(ours.flip.float().mean() - 0.5) < 0.01
    assert same_categories(ours.flip.tolist(), theirs.flip.tolist()) > 1e-3
    # The test has the power to see a wrong recipe: sub-policies drawn from the first 20 only, a wider crop.
    assert same_categories(ours.policy.remainder(20).tolist(), theirs.policy.tolist()) < 1e-6
    never_negated = CifarDraw(ours.policy, ours.applied, torch.zeros_like(ours.negated), ours.top, ours.left, ours.flip)
    assert same_categories(image_outcomes(never_negated, policies), image_outcomes(theirs, policies)) < 1e-6
    augmentation.padding = 5
    assert same_categories(augmentation.draw(20_000, torch.Generator().manual_seed(0)).top.tolist(),
                           theirs.top.tolist()) < 1e-6


def test_mnist_draws_follow_torchvisions_distributions():
    augmentation = PaperAugmentation(MNIST)
    ours = augmentation.draw(20_000, torch.Generator().manual_seed(0))
    theirs = reference_draws(MNIST, 3000, seed=0)

    def same_continuous(field):
        return stats.ks_2samp(getattr(ours, field).numpy(), getattr(theirs, field).numpy()).pvalue

    for field in ("angle", "scale", "brightness", "contrast"):
        assert same_continuous(field) > 1e-3, field
    assert -10 <= ours.angle.min() < -9.9 and 9.9 < ours.angle.max() <= 10
    assert 0.9 <= ours.scale.min() < 0.901 and 1.099 < ours.scale.max() <= 1.1
    for axis in (0, 1):
        assert set(ours.translate[:, axis].tolist()) == set(range(-3, 4))
        assert same_categories(ours.translate[:, axis].tolist(), theirs.translate[:, axis].tolist()) > 1e-3
    for field in ("top", "left", "brightness_first"):
        assert same_categories(getattr(ours, field).tolist(), getattr(theirs, field).tolist()) > 1e-3
    # Power: a rotation range of 12 degrees, a scale range of 0.85-1.15, 15% translation all fail.
    augmentation.degrees, augmentation.scale, augmentation.translate = (-12.0, 12.0), (0.85, 1.15), (0.15, 0.15)
    wrong = augmentation.draw(20_000, torch.Generator().manual_seed(0))
    assert stats.ks_2samp(wrong.angle.numpy(), theirs.angle.numpy()).pvalue < 1e-6
    assert stats.ks_2samp(wrong.scale.numpy(), theirs.scale.numpy()).pvalue < 1e-6
    assert same_categories(wrong.translate[:, 0].tolist(), theirs.translate[:, 0].tolist()) < 1e-6


# --- determinism, per-image draws, the interface ----------------------------------------------

@pytest.mark.parametrize("info", [CIFAR, MNIST], ids=["cifar", "mnist"])
def test_a_generator_seed_fixes_the_draw_and_each_image_gets_its_own(info, grey, rgb):
    images = rgb if info.recipe == "cifar" else grey
    augmentation = PaperAugmentation(info)
    first = augmentation(images, torch.Generator().manual_seed(7))
    assert torch.equal(first, augmentation(images, torch.Generator().manual_seed(7)))
    assert not torch.equal(first, augmentation(images, torch.Generator().manual_seed(8)))
    torch.manual_seed(3)  # no generator: the global one, as the engine's seed_epoch seeds it
    again = augmentation(images)
    torch.manual_seed(3)
    assert torch.equal(again, augmentation(images))
    same = images[:1].repeat(64, 1, 1, 1)
    out = augmentation.augment(same, torch.Generator().manual_seed(0))
    assert len({bytes(o.numpy()) for o in out}) > 40  # one image, many draws
    assert first.dtype == torch.float32 and first.shape == images.shape
    assert torch.equal(first, augmentation.normalise(augmentation.augment(images, torch.Generator().manual_seed(7))))
    with pytest.raises(TypeError, match="uint8"):
        augmentation(images.float())


@pytest.mark.parametrize("info, step, replacement", [
    (MNIST, 4, lambda: v2.RandomAffine(degrees=0, translate=(0.1, 0.1), shear=5)),
    (CIFAR, 2, lambda: v2.AutoAugment(v2.AutoAugmentPolicy.IMAGENET)),  # the policy is ours, as data: CIFAR-10's
    (CIFAR, 2, lambda: v2.AutoAugment(v2.AutoAugmentPolicy.CIFAR10, interpolation=v2.InterpolationMode.BILINEAR)),
], ids=["shear", "imagenet-policy", "bilinear"])
def test_an_unsupported_recipe_is_refused(monkeypatch, info, step, replacement):
    original = augment.train_transform

    def changed(info, augmentation):
        composed = original(info, augmentation)
        composed.transforms[step] = replacement()
        return composed
    monkeypatch.setattr(augment, "train_transform", changed)
    with pytest.raises(NotImplementedError):
        PaperAugmentation(info)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("info", [CIFAR, MNIST], ids=["cifar", "mnist"])
def test_the_same_draw_on_the_gpu_gives_the_same_images(info, grey, rgb):
    images = rgb if info.recipe == "cifar" else grey
    augmentation = PaperAugmentation(info)
    draw = augmentation.draw(len(images), torch.Generator().manual_seed(0))
    on_cpu, on_gpu = augmentation.apply(images, draw), augmentation.apply(images.cuda(), draw).cpu()
    difference = (on_cpu.int() - on_gpu.int()).abs()
    # GPU float arithmetic (grid coordinates, blends) may round a few pixels differently
    assert (difference > 0).float().mean() < 1e-3


# --- one crop and one flip for both recipes ----------------------------------------------------

@pytest.mark.parametrize("info", [CIFAR, MNIST], ids=["cifar", "mnist"])
def test_the_paper_recipe_draws_its_crop_and_flip_as_the_light_recipe_does(info):
    # One random-number contract: the crop's offsets come first from the generator, in
    # random_crop_offsets' order, and the flip is random_flips' coin.
    augmentation = PaperAugmentation(info)
    draw = augmentation.draw(500, torch.Generator().manual_seed(4))
    top, left = random_crop_offsets(500, augmentation.padding, torch.Generator().manual_seed(4))
    assert torch.equal(draw.top, top) and torch.equal(draw.left, left)
    if info.recipe == "cifar":
        stream = torch.Generator().manual_seed(4)
        random_crop_offsets(500, augmentation.padding, stream)
        torch.randint(25, (500,), generator=stream)  # the sub-policies,
        torch.rand(500, 2, generator=stream), torch.rand(500, 2, generator=stream)  # their coins and signs
        assert torch.equal(draw.flip, random_flips(500, 0.5, stream))


# --- torchvision: public API only, imported lazily -------------------------------------------

PACKAGE = Path(augment.__file__).resolve().parents[1]


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def python_generated_names() -> set[str]:
    """Underscored names Python itself gives every namedtuple, enum, ABC or protocol class
    (``_fields``, ``_asdict``, ...): their documented API, not torchvision's internals."""
    import abc
    import collections
    import enum
    import typing

    class Protocol(typing.Protocol):
        pass

    class Abstract(abc.ABC):  # noqa: B024 (a probe: its abstract methods do not matter)
        pass

    class Enumeration(enum.Enum):
        member = 1
    probes = (collections.namedtuple("Probe", "field"), Protocol, Abstract, Enumeration)
    return {name for probe in probes for name in dir(probe)}


def torchvision_private_names() -> set[str]:
    """Every private name (one leading underscore) of torchvision's modules, of the classes
    they define and of the attributes their code sets on ``self`` (``_policies``), after
    importing the parts the package uses."""
    import torchvision.datasets  # noqa: F401
    import torchvision.models  # noqa: F401
    import torchvision.transforms.v2  # noqa: F401
    names: set[str] = set()
    for module_name, module in list(sys.modules.items()):
        if module is None or module_name.split(".")[0] != "torchvision":
            continue
        names.update(filter(is_private, module_name.split(".")))
        for name, value in vars(module).items():
            names.update(filter(is_private, [name]))
            if isinstance(value, type) and value.__module__.split(".")[0] == "torchvision":
                names.update(filter(is_private, vars(value)))
        if str(getattr(module, "__file__", "")).endswith(".py"):
            tree = ast.parse(Path(module.__file__).read_text())
            names.update(node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
                         and isinstance(node.ctx, ast.Store) and is_private(node.attr))
    return names - python_generated_names()


def private_torchvision_uses(source: str, private: set[str]) -> list[str]:
    """Where ``source`` reaches into torchvision's private names: imports from torchvision of
    (or through) a private name, an attribute, a ``getattr``-style string or a dotted module
    path naming one of ``private``. A name the source defines itself (a function, a class, an
    attribute it sets) is its own, not torchvision's."""
    tree = ast.parse(source)
    own = {getattr(node, "name", None) or getattr(node, "attr", None) or getattr(node, "id", None)
           for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
           or isinstance(node, (ast.Attribute, ast.Name)) and isinstance(node.ctx, ast.Store)}
    private = private - own
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "torchvision":
            names = node.module.split(".") + [alias.name for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [part for alias in node.names if alias.name.split(".")[0] == "torchvision"
                     for part in alias.name.split(".")]
        elif isinstance(node, ast.Attribute):
            names = [node.attr] if node.attr in private else []
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names = ([node.value] if node.value in private else []) + \
                re.findall(r"\btorchvision(?:\.\w+)*?\.(_\w+)", node.value)
        else:
            continue
        found += [f"line {node.lineno}: {name}" for name in names if is_private(name)]
    return found


def test_the_package_uses_no_private_torchvision_name():
    private = torchvision_private_names()
    assert {"_policies", "_AUGMENTATION_SPACE", "_apply_image_or_video_transform", "_functional_tensor"} <= private
    uses = {str(path.relative_to(PACKAGE.parent)): private_torchvision_uses(path.read_text(), private)
            for path in sorted(PACKAGE.rglob("*.py"))}
    assert not {path: found for path, found in uses.items() if found}
    # The check sees the ways the batch path used to reach in.
    old_ways = ("self.policies = self.autoaugment._policies\n"
                "fill = getattr(autoaugment, '_fill')\n"
                "from torchvision.transforms import _functional_tensor\n"
                "from torchvision.transforms.v2 import _auto_augment\n"
                "import torchvision.transforms.v2._utils\n"
                "module = importlib.import_module('torchvision.transforms._functional_tensor')\n")
    assert len(private_torchvision_uses(old_ways, private)) == 6


def test_importing_the_data_modules_does_not_import_torchvision():
    code = ("import sys, titn_lite, titn_lite.data.augment, titn_lite.data.datasets; "
            "print([m for m in sys.modules if m.startswith('torchvision')])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
