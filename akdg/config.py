"""Config validation: JSON-schema validation (defaults filled in), then names checked against the registries.

The same function runs in the Snakefile (before any job) and behind ``akdg validate-config``, so a
typo in a key or a name fails in one place, with a sentence that names it. Each step's ``--spec``
is checked the same way against workflow/schemas/specs.schema.yaml.
"""

from __future__ import annotations

import copy
import functools
import logging
import math
import re
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, ValidationError, validators
from jsonschema.exceptions import best_match
from jsonschema.protocols import Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from akdg.architectures import check_model, model_label
from akdg.extractor_pins import UNLABELLED, resolve_source
from akdg.method_options import LossSpec, loss_name, loss_parameters
from akdg.registry import ARCHITECTURES, DATASETS, DOWNLOADERS, LABELLED, LOSSES, METHODS, SOURCES, AkdgError, import_plugins
from akdg.tuning import check_tuning

SCHEMA = Path(__file__).resolve().parent / "schemas" / "config.schema.yaml"  # package data; workflow/schemas links here
SPECS = SCHEMA.with_name("specs.schema.yaml")  # what each step's --spec holds
log = logging.getLogger(__name__)


def model_losses(config: dict[str, Any]) -> dict[str, LossSpec]:
    """Where a loss is chosen -> the loss: the top-level default, the teacher's and each method label's own."""
    losses = {"loss": config["loss"], "teacher.loss": config["teacher"].get("loss", config["loss"])}
    losses.update((f"methods.{label}.loss", variant["loss"]) for label, variant in method_variants(config).items())
    return losses


BOOLEANS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}  # as YAML 1.1 reads them
NULLS = ("null", "Null", "NULL", "~")


def _number(text: str) -> int | float | None:
    """``text`` as a config file means it (``64``, ``2e-4``, ``1_000``); None if it is no finite number."""
    for parse in (int, float):
        try:
            number = parse(text)
        except ValueError:
            continue
        return number if math.isfinite(number) else None
    return None


def _scalar(value: Any, node: dict[str, Any]) -> Any:
    """``value`` in the type ``node`` asks for, where its text (or YAML's reading of it) means one; else as it is."""
    kind = node.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    if "null" in kinds and isinstance(value, str) and (value in NULLS or (value == "" and "string" not in kinds)):
        return None  # --config 'teacher={checkpoint: null}' arrives as the word
    if kind in ("integer", "number") and isinstance(value, float) and not math.isfinite(value):
        return str(value)  # YAML's .nan and .inf pass every bound of the schema; as text its type refuses them
    if kind in ("integer", "number") and isinstance(value, str) and _number(value) is not None:
        value = _number(value)
    if kind == "integer" and isinstance(value, float) and value.is_integer():
        return int(value)  # the schema takes 20.0 as an integer; range() and tensor shapes do not
    if kind == "boolean" and isinstance(value, str) and value.lower() in BOOLEANS:
        return BOOLEANS[value.lower()]
    if kind == "string" and isinstance(value, bool):
        spelled = [word for word in node.get("enum", []) if BOOLEANS.get(str(word).lower()) is value]
        if len(spelled) == 1:
            return spelled[0]  # YAML reads compile: off as False
    return value


@functools.cache
def schema_registry() -> Registry:
    """Every schema beside the config's, by file URI (its ``$id``), so that ``$ref``s within and between them resolve offline."""
    schemas = {path.resolve().as_uri(): yaml.safe_load(path.read_text()) for path in SCHEMA.parent.glob("*.schema.yaml")}
    return Registry().with_resources((uri, DRAFT202012.create_resource({**schema, "$id": uri})) for uri, schema in schemas.items())


def _filling_defaults(validator: type[Validator]) -> type[Validator]:
    """jsonschema's recipe (its FAQ): fill each absent property's default, then validate.

    Snakemake's ``validate`` applies the same recipe, but reads the schema file again at every ``$ref`` to
    another file (a third of a second per spec).
    """
    check_properties = validator.VALIDATORS["properties"]

    def properties(checker: Validator, properties: dict[str, Any], instance: Any, schema: dict[str, Any]) -> Any:
        for name, sub in properties.items():
            if "$ref" in sub and "default" not in sub:  # a step spec's keys refer to the config's, where the defaults are
                sub = checker._resolver.lookup(sub["$ref"]).contents  # as jsonschema's own $ref keyword resolves it
            if isinstance(instance, dict) and "default" in sub:
                instance.setdefault(name, copy.deepcopy(sub["default"]))
        yield from check_properties(checker, properties, instance, schema)

    return validators.extend(validator, {"properties": properties})


FillingValidator = _filling_defaults(Draft202012Validator)


def coerce_to_schema(value: Any, node: dict[str, Any], resolver: Any = Registry().resolver()) -> Any:
    """Give numbers and booleans the types the JSON schema ``node`` asks for, in place (``resolver``: for its ``$ref``s).

    Snakemake parses nested ``--config`` values (``seeds=[0]``) with YAML's BaseLoader, which keeps
    every scalar a string, and PyYAML reads ``2e-4`` as a string; without this, such values could never
    validate. Integral floats (``steps: 1e3``) become ints. Values that are no number stay, for the
    validator to report.
    """
    if "$ref" in node:
        resolved = resolver.lookup(node["$ref"])
        node, resolver = resolved.contents, resolved.resolver
    if isinstance(value, dict):
        if "if" in node:  # e.g. a long-form method variant or a student sweep: its keys are the chosen branch's
            coerce_to_schema(value, node.get("then" if Draft202012Validator(node["if"]).is_valid(value) else "else") or {}, resolver)
        properties, extra = node.get("properties", {}), node.get("additionalProperties")
        for key in value:
            sub = properties.get(key, extra if isinstance(extra, dict) else None)
            if sub is not None:
                value[key] = coerce_to_schema(value[key], sub, resolver)
    elif isinstance(value, list) and isinstance(node.get("items"), dict):
        return [coerce_to_schema(item, node["items"], resolver) for item in value]
    return _scalar(value, node)


def coerce_to_schema_file(value: Any, path: Path) -> Any:
    """:func:`coerce_to_schema` against a schema file beside the config's (``$ref``s between them resolved)."""
    uri = path.resolve().as_uri()
    return coerce_to_schema(value, schema_registry().contents(uri), schema_registry().resolver(base_uri=uri))


def schema_error(error: ValidationError, skip: int = 0) -> str:
    """One sentence for a schema violation: where (less ``skip`` outer keys), what is wrong, for an unknown key what is allowed."""
    path = list(error.absolute_path)[skip:]
    where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path).lstrip(".")
    message = error.message
    if error.validator == "additionalProperties" and error.schema.get("properties"):
        message += f"; allowed here: {', '.join(error.schema['properties'])}"
    return f"{where or 'top level'}: {message}"


def schema_violation(instance: Any, schema: Path) -> ValidationError | None:
    """Validate ``instance`` against the schema file, filling defaults in place; the most relevant violation, if any."""
    uri = schema.resolve().as_uri()
    error = best_match(FillingValidator(schema_registry().contents(uri), registry=schema_registry()).iter_errors(instance))
    if error is not None:
        log.debug("%s", error)  # the full report: the failing schema and instance, often hundreds of lines
    return error


def validate_schema(config: dict[str, Any], schema: Path = SCHEMA) -> None:
    """Validate and fill defaults in place; an unknown or ill-typed key raises AkdgError in one sentence naming it."""
    error = schema_violation(config, schema)
    if error is not None:
        raise AkdgError(f"invalid config: {schema_error(error)}")


def fill_spec_defaults(step: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Fill ``spec``'s absent keys with the schema's defaults in place, without judging the rest (callers check what they need)."""
    schema_violation({step: spec}, SPECS)
    return spec


def check_spec(step: str, spec: Any) -> None:
    """Check ``akdg STEP --spec`` against the step's entry in specs.schema.yaml, filling the config's defaults in place.

    The workflow's specs come from a validated config; a spec written by hand would otherwise fail in
    the middle of the step with a KeyError or TypeError.
    """
    wrapped = {step: spec}
    coerce_to_schema_file(wrapped, SPECS)
    error = schema_violation(wrapped, SPECS)
    if error is not None:
        raise AkdgError(
            f"akdg {step} --spec: {schema_error(error, skip=1)}; a spec holds the slice of the config this step reads "
            f"(workflow/schemas/{SPECS.name})"
        )
    models = {key: spec[key] for key in ("generator", "discriminator") if isinstance(spec.get(key), dict)}
    models.update((f"generators.{label}", model) for label, model in (spec.get("generators") or {}).items())
    for where, model in models.items():
        check_model(model, None, f"akdg {step} --spec: {where}")  # the resolution comes with the data, read later


def check_names(config: dict[str, Any]) -> None:
    """Every name must be registered, method options known and of their declared types, files named must exist."""
    from akdg.method_options import check_options, check_residual_generators

    import_plugins(config.get("plugins", []))
    dataset = config["dataset"]["name"]
    DATASETS.metadata(dataset)  # refuses an unknown name, listing the known ones
    if dataset in DOWNLOADERS.names() and dataset not in SOURCES.names():
        raise AkdgError(
            f"dataset {dataset!r} has a downloader but no sources; register the files its loader reads with "
            f"akdg.registry.SOURCES.register({dataset!r}), so that the workflow downloads and tracks them"
        )
    path = config["dataset"].get("path")
    if path is not None and not Path(path).expanduser().exists():
        raise AkdgError(
            f"dataset.path {path} does not exist; point it at the dataset's files (folder: a folder of images; npz: an .npz file)"
        )
    for where, spec in model_losses(config).items():
        schema = LOSSES.metadata(loss_name(spec))["parameters_schema"]  # refuses an unknown name, listing the known ones
        coerce_to_schema(spec, schema)  # in place: --config strings become numbers
        check_options(schema, loss_parameters(spec), f"{where} {loss_name(spec)}")
    models = {
        "teacher.generator": config["teacher"]["generator"],
        "teacher.discriminator": config["teacher"]["discriminator"],
        "student_discriminator": config["student_discriminator"],
        **{f"students[{index}]": student for index, student in enumerate(config["students"])},
    }
    for where, model in models.items():
        schema = ARCHITECTURES.metadata(model["arch"]).get("options_schema", {})  # refuses an unknown family, listing the known ones
        coerce_to_schema(model, {"properties": schema})  # in place: --config values arrive as strings
        check_model(model, config["dataset"]["resolution"], where)
    for label, variant in method_variants(config).items():
        info = METHODS.metadata(variant["method"])  # from the registry index: the method's module (torch) is not imported
        coerce_to_schema(variant["options"], info["options_schema"])  # in place: the config's own dict
        check_options(
            info["options_schema"],
            variant["options"],
            f"methods.{label}" + (".options" if "method" in (config["methods"][label] or {}) else ""),
        )
        teacher = config["teacher"]["generator"] if info["requires_teacher"] else None
        for student in config["students"]:
            if variant["method"] in METHODS.imported():  # a plug-in, whose own check_generators may say more
                METHODS.get(variant["method"]).check_generators(student, teacher)
            elif info["residual_generators"]:
                check_residual_generators(variant["method"], student, teacher, lambda arch: ARCHITECTURES.metadata(arch)["residual"])
    check_lr_schedules(config)
    variants = method_variants(config)
    option_schemas = {label: METHODS.metadata(variant["method"])["options_schema"] for label, variant in variants.items()}
    for label, knobs in (config.get("tuning") or {}).get("grid", {}).items():  # in place: YAML and --config give 2e-4 as text
        for knob, values in knobs.items():
            node = {"type": "number"} if knob == "lr" else option_schemas.get(label, {}).get("properties", {}).get(knob, {})
            knobs[knob] = coerce_to_schema(values, {"type": "array", "items": node})
    check_tuning(config, variants, option_schemas)
    checkpoint = config["teacher"].get("checkpoint")
    if checkpoint and not Path(checkpoint).is_file():
        raise AkdgError(
            f"teacher.checkpoint {checkpoint} does not exist; give the path of a trained teacher or remove the key to train one"
        )
    labelled = LABELLED.get(dataset)(config["dataset"]) if dataset in LABELLED.names() else True  # a dataset without an entry has labels
    if resolve_source(config) == "train" and not labelled:  # resolve_source refuses a pinned one where none ships
        raise AkdgError(UNLABELLED.format(dataset=config["dataset"]["label"]))
    evaluation = config["evaluation"]
    if evaluation["kid_subset_size"] > evaluation["num_samples"]:
        raise AkdgError("evaluation.kid_subset_size must not exceed evaluation.num_samples")
    if evaluation["isc_splits"] > evaluation["num_samples"]:
        raise AkdgError("evaluation.isc_splits must not exceed evaluation.num_samples")
    if evaluation["curve_fractions"] and evaluation["curve_samples"] > evaluation["num_samples"]:
        raise AkdgError(
            f"evaluation.curve_samples={evaluation['curve_samples']} exceeds evaluation.num_samples={evaluation['num_samples']}; "
            "a curve point is meant to cost less than the table's score: lower curve_samples"
        )
    if evaluation["curve_fractions"] and evaluation["curve_samples"] <= evaluation["prc_neighborhood"]:
        raise AkdgError(
            f"evaluation.curve_samples={evaluation['curve_samples']} leaves no {evaluation['prc_neighborhood']}-th nearest neighbour "
            "for precision and recall (evaluation.prc_neighborhood); raise curve_samples"
        )
    weights = evaluation.get("inception_weights")
    if evaluation.get("feature_extractor") == "inception-v3-compat" and weights and not Path(weights).expanduser().is_file():
        raise AkdgError(
            f"evaluation.inception_weights {weights} does not exist; give the path of a copy of torch-fidelity's "
            "Inception-v3 weights, or null to use its default location (downloaded there if missing)"
        )


def check_lr_schedules(config: dict[str, Any]) -> None:
    """Refuse a learning-rate schedule that cannot do what it says over its model's steps, in a sentence."""
    specs = {
        f"methods.{label}": student_training_spec(config, config["students"][0], label, config["seeds"][0]) for label in config["methods"]
    }
    if not config["teacher"].get("checkpoint"):
        specs["teacher"] = teacher_training_spec(config)
    for where, spec in specs.items():
        schedule = spec.get("lr_schedule") or {"kind": "constant"}
        if schedule["kind"] == "constant" and "start" in schedule:
            raise AkdgError(f"{where}: lr_schedule.start applies to kind linear only; remove it or set kind: linear")
        if schedule["kind"] == "linear" and schedule.get("start", 0) >= spec["steps"]:
            raise AkdgError(
                f"{where}: lr_schedule.start is {schedule['start']}, but the model trains for {spec['steps']} steps, so the "
                "rate would never decay; set start below the steps, or kind: constant"
            )


LABEL_RULE = "names files and folders, so it may hold only letters, digits and _, with single hyphens between them"


def check_labels(config: dict[str, Any], schema: dict[str, Any]) -> None:
    """Refuse a dataset or method label that is not a safe path component, in a sentence (the schema's own error is a regex)."""
    dataset, methods = config.get("dataset"), config.get("methods")
    label = dataset.get("label") if isinstance(dataset, dict) else None
    if isinstance(label, str) and not re.fullmatch(schema["properties"]["dataset"]["properties"]["label"]["pattern"], label):
        raise AkdgError(f"invalid config: dataset.label {label!r} {LABEL_RULE}; rename it (e.g. cifar10-rerun)")
    for label in methods if isinstance(methods, dict) else []:
        if isinstance(label, str) and not re.fullmatch(schema["properties"]["methods"]["propertyNames"]["pattern"], label):
            raise AkdgError(f"invalid config: method label {label!r} {LABEL_RULE}; rename it (e.g. vanilla-b64)")


def expand_students(config: dict[str, Any]) -> None:
    """Replace each sweep entry ``{arch, widths: [...]}`` of ``students`` by one ``{arch, width}`` per width, in place.

    Runs before the schema, so that every consumer of a validated config (the workflow, the benchmarks,
    the docs) sees plain students.
    """
    entries = config.get("students")
    if not isinstance(entries, list):
        return  # the schema says what is wrong with it
    students, origins = [], []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or "widths" not in entry:
            students.append(entry)
            origins.append(index)
            continue
        where = f"students[{index}] ({entry.get('arch', 'no arch')})"
        if "width" in entry:
            raise AkdgError(
                f"invalid config: {where} gives both width and widths; keep widths to sweep the family, or width for one student"
            )
        layout = [key for key in _layout_options(entry.get("arch")) if key in entry]
        if layout:
            raise AkdgError(
                f"invalid config: {where} gives widths and {', '.join(layout)}; {' and '.join(layout)} set every stage's channels, "
                f"which fixes the width, so list one student per layout, or drop {', '.join(layout)} to sweep widths"
            )
        widths = entry["widths"]
        if not isinstance(widths, list) or not widths:
            raise AkdgError(
                f"invalid config: {where}.widths must be a non-empty list of widths, e.g. [4, 8, 16]; for one student give width"
            )
        for width in widths:
            if isinstance(width, bool) or not isinstance(width, int) or width < 1:
                raise AkdgError(
                    f"invalid config: {where}.widths holds {width!r}; a width is a positive whole number of channels (conv families) "
                    "or hidden units (mlp)"
                )
        rest = {key: value for key, value in entry.items() if key not in ("arch", "widths")}  # family options, for every width
        for width in widths:
            students.append({"arch": entry.get("arch"), "width": width, **rest})
            origins.append(index)
    seen: dict[str, int] = {}
    for student, origin in zip(students, origins):
        if not (isinstance(student, dict) and isinstance(student.get("arch"), str)):
            continue  # the schema says what is wrong with it
        key = student_key(student)
        if key in seen:
            where = f"in students[{origin}].widths" if seen[key] == origin else f"in students[{seen[key]}] and students[{origin}]"
            raise AkdgError(
                f"invalid config: student {key} appears twice ({where}); each model (its label: arch, width and options) "
                "may appear once, so remove one"
            )
        seen[key] = origin
    config["students"] = students


def normalise_teacher_seeds(config: dict[str, Any]) -> None:
    """``teacher.seed: s`` becomes ``teacher.seeds: [s]`` in place, before the schema, so that every consumer reads one form."""
    teacher = config.get("teacher")
    if not isinstance(teacher, dict) or "seed" not in teacher:
        return  # the schema says what is wrong with a teacher that is no mapping
    if "seeds" in teacher:
        raise AkdgError(
            "invalid config: teacher gives both seed and seeds; keep seeds (a list, one teacher per seed) or seed for one teacher"
        )
    teacher["seeds"] = [teacher.pop("seed")]


def check_teacher_pairing(config: dict[str, Any]) -> None:
    """Refuse a grid in which some teacher distils into no student seed, or an imported teacher with several seeds."""
    teachers, seeds = config["teacher"]["seeds"], config["seeds"]
    if config["teacher"]["checkpoint"] and len(teachers) != 1:
        raise AkdgError(
            f"invalid config: teacher.checkpoint imports one teacher, but teacher.seeds lists {len(teachers)}; "
            "give one seed, or remove checkpoint to train one teacher per seed"
        )
    if len(seeds) < len(teachers):
        unused = teachers[len(seeds) :]
        raise AkdgError(
            f"invalid config: {len(teachers)} teacher seeds but {len(seeds)} student seeds, so the teacher(s) of seed "
            f"{', '.join(map(str, unused))} would distil into no student (seed i pairs with teacher.seeds[i % {len(teachers)}]); "
            f"list at least {len(teachers)} seeds or fewer teacher.seeds"
        )


def teacher_seed_for(config: dict[str, Any], student_seed: int) -> int:
    """The teacher a student seed distils: the student seed at position i of ``seeds`` pairs with ``teacher.seeds[i % n]``.

    Pairing by position spreads the students evenly over the teachers, so every comparison of methods
    sees each teacher as often, and a student seed keeps its teacher when seeds are appended.
    """
    seeds, teachers = config["seeds"], config["teacher"]["seeds"]
    if student_seed not in seeds:
        raise AkdgError(f"seed {student_seed} is not among the config's seeds {seeds}; a student's teacher is paired by its position there")
    return teachers[seeds.index(student_seed) % len(teachers)]


def _layout_options(arch: Any) -> list[str]:
    """The options of a registered family that set every stage's channels (and so replace width); none for another name."""
    return ARCHITECTURES.metadata(arch).get("layout", []) if isinstance(arch, str) and arch in ARCHITECTURES.names() else []


def check_buildable(config: dict[str, Any]) -> None:
    """Build every student on the meta device (no memory, no compute): a width its family cannot build fails here, in a sentence.

    Not part of :func:`validate_config`: building imports torch, which planning a grid (``snakemake -n``) never
    does. ``akdg validate-config`` and a run's start call it, before any job.
    """
    for student in config["students"]:
        try:
            planned_size(student, config)
        except Exception as error:  # a family's own refusal (AkdgError) or a layer torch cannot make (RuntimeError, ValueError)
            raise AkdgError(
                f"invalid config: student {student_key(student)} cannot be built at {config['dataset']['resolution']} px ({error}); "
                "drop that width from the students (or from its entry's widths)"
            ) from None


def planned_size(model: dict[str, Any], config: dict[str, Any]) -> dict[str, int]:
    """Params, layers and mult-adds of one generator of the grid, built on the meta device (no memory, no compute).

    Channels are the dataset's where the config states them (1 for digits), else 3: only the last layer depends on them.
    """
    import torch

    from akdg.architectures import build_generator
    from akdg.cost import generator_size

    dataset = config["dataset"]
    channels = dataset.get("channels", 1 if dataset["name"] == "digits" else 3)
    with torch.device("meta"):
        generator = build_generator(model, resolution=dataset["resolution"], channels=channels, z_dim=config["z_dim"])
    return generator_size(generator, config["z_dim"])


def capacity_warnings(config: dict[str, Any]) -> list[str]:
    """A sentence for every student that is not smaller than its teacher in parameters or mult-adds.

    The paper's students have about 0.5-0.65x the teacher's parameters and far fewer mult-adds; a
    grid without that gap tests distillation into a model as large as its source.
    """
    teacher = planned_size(config["teacher"]["generator"], config)
    warnings = []
    for student in config["students"]:
        size = planned_size(student, config)
        if size["params"] >= teacher["params"] or size["mult_adds"] >= teacher["mult_adds"]:
            warnings.append(
                f"student {student_key(student)} is not smaller than the teacher {student_key(config['teacher']['generator'])} "
                f"({size['params']:,} vs {teacher['params']:,} parameters, {size['mult_adds']:,} vs {teacher['mult_adds']:,} mult-adds at "
                f"{config['dataset']['resolution']} px): the grid lacks the paper's capacity gap; narrow the student or widen the teacher"
            )
    return warnings


def validate_config(config: dict[str, Any]) -> dict[str, Any]:
    """Coerce, expand student sweeps, validate against the schema (filling defaults), check names: the Snakefile runs this too."""
    coerce_to_schema_file(config, SCHEMA)
    expand_students(config)
    normalise_teacher_seeds(config)
    check_labels(
        config, schema_registry().contents(SCHEMA.resolve().as_uri())
    )  # before the schema, whose error for a pattern would not say what a label may hold
    validate_schema(config)
    config["dataset"].setdefault("label", config["dataset"]["name"])  # a schema default cannot copy another key
    check_teacher_pairing(config)
    try:
        check_names(config)
    except AkdgError as error:
        raise AkdgError(f"invalid config: {error}") from None
    return config


def load_config(path: Path | str) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise AkdgError(f"config file {path} does not exist")
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except (OSError, UnicodeDecodeError) as error:
        raise AkdgError(
            f"config file {path} cannot be read as text ({error}); give the path of a YAML config such as config/config.yaml"
        ) from None
    except yaml.YAMLError as error:
        raise AkdgError(f"config file {path} is not valid YAML: {error}") from None
    if not isinstance(config, dict):
        what = "a list" if isinstance(config, list) else "a single value"
        raise AkdgError(f"config file {path} holds {what}; a config maps keys (outdir, dataset, ...) to values, as config/config.yaml does")
    return validate_config(config)


def method_variants(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each method label's registered method, options and training overrides, whichever form the config used.

    Short form ``akdg: {kd_weight: 1.0}``: the label is the method. Long form
    ``vanilla-b2048: {method: vanilla, training: {batch_size: 2048}}``: a variant of a registered method,
    which may also set its own ``loss`` (else the config's).
    """
    variants = {}
    for label, value in config["methods"].items():
        value = value or {}
        if "method" in value:
            variants[label] = {
                "method": value["method"],
                "options": value.get("options") or {},
                "training": value.get("training") or {},
                "loss": value.get("loss", config["loss"]),
            }
        else:
            variants[label] = {"method": label, "options": value, "training": {}, "loss": config["loss"]}
    return variants


def student_key(model: dict[str, Any]) -> str:
    """The name a student generator goes by in paths and tables, e.g. ``dcgan-w16`` (:func:`akdg.architectures.model_label`)."""
    return model_label(model)


def training_spec(
    config: dict[str, Any],
    generator: dict[str, Any],
    discriminator: dict[str, Any],
    method: str,
    options: dict[str, Any],
    seed: int,
    overrides: dict[str, Any],
    loss: LossSpec | None = None,
) -> dict[str, Any]:
    """Everything one training job depends on: the config's training block with ``overrides`` applied.

    The DAG passes it to ``akdg train --spec``; the benchmarks build theirs here too, so a benchmarked
    job is the DAG's job. ``loss``: the model's own (default: the config's). The loop options without a
    schema default (``lr_schedule``, ``generator_batch_size``) enter the spec only where set, so that
    the specs of configs without them, and the jobs Snakemake plans from them, stay as they were;
    ``ema_bn_batches`` enters only with an EMA, the only jobs whose saved weights it changes;
    ``curve_fractions`` (when to keep the generator for the training curves) only where the config asks for curves.
    """
    training = {**config["training"], **overrides, "optimizer": {**config["training"]["optimizer"], **overrides.get("optimizer", {})}}
    return {
        "generator": generator,
        "discriminator": discriminator,
        "method": method,
        "method_options": options,
        "seed": seed,
        "steps": training["steps"],
        "z_dim": config["z_dim"],
        "loss": config["loss"] if loss is None else loss,
        "batch_size": training["batch_size"],
        "n_dis": training["n_dis"],
        "log_every": training["log_every"],
        "ema_decay": training["ema_decay"],
        "optimizer": training["optimizer"],
        "device": training["device"],  # as asked (auto by default), not as resolved: the spec is the same on every machine
        "amp": training["amp"],
        "channels_last": training["channels_last"],
        "compile": training["compile"],
        "max_abs_loss": training["max_abs_loss"],
        **{key: training[key] for key in ("lr_schedule", "generator_batch_size") if key in training},
        **({"ema_bn_batches": training["ema_bn_batches"]} if training["ema_decay"] else {}),  # it matters only with an EMA
        **({"curve_fractions": curves} if (curves := config["evaluation"].get("curve_fractions")) else {}),
    }


def student_training_spec(config: dict[str, Any], student: dict[str, Any], label: str, seed: int) -> dict[str, Any]:
    """The spec of one student for one method label (its variant's options and training overrides) and seed."""
    variant = method_variants(config)[label]
    return training_spec(
        config, student, config["student_discriminator"], variant["method"], variant["options"], seed, variant["training"], variant["loss"]
    )


def teacher_training_spec(config: dict[str, Any], seed: int | None = None) -> dict[str, Any]:
    """The spec of the teacher of ``seed`` (default: the first of ``teacher.seeds``): vanilla GAN training with
    the teacher's own steps, EMA and training overrides."""
    teacher = config["teacher"]
    overrides = {**teacher.get("training", {}), "steps": teacher["steps"], "ema_decay": teacher["ema_decay"]}
    return training_spec(
        config,
        teacher["generator"],
        teacher["discriminator"],
        "vanilla",
        {},
        teacher["seeds"][0] if seed is None else seed,
        overrides,
        teacher.get("loss", config["loss"]),
    )
