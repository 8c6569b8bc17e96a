"""The run configuration: a TOML file and CLI flags, validated at the boundary (unknown keys fail)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import tomllib
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from harness.core.errors import HarnessError, validation_message


class CompareConfig(BaseModel):
    """Everything `harness compare` needs. CLI flags override keys of the --config file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    suite: str
    model: str | None = Field(None, description="Model alias, hub id, local folder or .gguf file.")
    models: list[str] | None = Field(None, min_length=1, description="Several models: every cell is (model, "
                                     "strategy, seed) and the decision picks a (model, strategy) pair.")
    strategies: list[str] | None = Field(None, description="Strategy names; all registered when empty.")
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    rerun: list[str] | None = Field(None, description="Strategies whose cells are recomputed although a "
                                    "finished record exists (`all`: every one).")
    limit: int | None = Field(None, ge=1, description="Cap on test items per task.")
    out: Path = Path("reports")
    out_url: str | None = Field(
        None, description="Set from an `out` that is a URL (s3://, file://...): `out` is then its local staging "
                          "folder and finished files are mirrored to the URL (harness.run.remote).")
    batch_size: Annotated[int, Field(ge=1, le=1024)] | Literal["auto"] = Field(
        8, description="Evaluation batch size, or `auto`: the largest whose KV cache fits in half the free memory.")
    retention: bool = Field(True, description="Measure forgetting on the suite's retention suite.")
    trust_remote_code: bool = False
    plugins: list[Path] = Field(default_factory=list)
    executor: Literal["local", "ray"] = Field(
        "local", description="Where cells run: in this process, or as Ray tasks (pip install 'harness[ray]').")
    ray_address: str | None = Field(
        None, description="Ray cluster to join (`auto` or host:port); default: a private local cluster per run.")
    baseline: str = Field("zero-shot", description="The strategy the report tests every other against, per task.")
    device: str | None = Field(None, description="cpu, cuda or cuda:N; default: cuda when present.")
    tune_trials: int | None = Field(None, ge=1, description="Tune every strategy that has a search space with the "
                                    "same N trials on dev first (harness tune); cached.")
    tune_jobs: int = Field(1, ge=1, description="Worker processes per study when tuning.")
    mlflow: bool = Field(False, description="Log each cell as an MLflow run in the run folder (mlflow/mlflow.db).")
    mlflow_uri: str | None = Field(None, description="Log to this MLflow tracking URI instead (implies mlflow).")
    decide: dict[str, Any] = Field(
        default_factory=dict,
        description="Decision constraints and prices ([decide] in run.toml; see harness.decide.decision).",
    )
    options: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Per-strategy options: [options.few-shot] k = 3."
    )

    @model_validator(mode="before")
    @classmethod
    def _out_url(cls, data: Any) -> Any:
        """A URL `out` becomes `out_url`, and `out` its staging folder, so every consumer of `out` works
        locally as before. `out_url` is never given on its own (it must match `out`'s staging folder)."""
        from harness.run.remote import is_url, staging_dir

        if not isinstance(data, dict):
            return data
        if is_url(data.get("out")):
            return {**data, "out": staging_dir(data["out"]), "out_url": data["out"]}
        url = data.get("out_url")
        if url is not None and (not is_url(url) or Path(data.get("out", "reports")) != staging_dir(url)):
            raise ValueError("out_url is set from `out`: give the URL as `out` (--out)")
        return data


def load_config(path: Path | None, overrides: dict[str, Any]) -> CompareConfig:
    """Merge the TOML file (if any) with the CLI overrides that were actually given."""
    data: dict[str, Any] = {}
    where = "command line"
    if path is not None:
        where = str(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise HarnessError(f"config file not found: {path}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise HarnessError(f"{path}: invalid TOML: {e}") from None
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return CompareConfig.model_validate(data)
    except ValidationError as e:
        raise HarnessError(validation_message(where, e)) from None
