"""Swin weights from other layouts into mmdet's names (what ``SwinTransformer`` here loads strictly).

- ``original_to_mmdet``: the Microsoft Swin repo's checkpoints (``swin_tiny_patch4_window7_224.pth``, which
  AWML's configs start from with ``convert_weights=True``): the same renames and patch-merging reorder as
  mmdet's ``swin_converter``. The classifier head, the final ``norm`` and the ``attn_mask`` buffers have no
  counterpart and are dropped; mmdet's per-output ``normI`` are not in such a checkpoint (mmdet leaves
  them at their init), so that load is strict except for those.
- ``hf_to_mmdet``: ``transformers``' ``SwinBackbone`` (separate q/k/v projections, ``hidden_states_norms``),
  used by the tests as an independent implementation to check this one against.

Why the reorder: the original repo merges 2x2 patches as concat(x[0::2,0::2], x[1::2,0::2], x[0::2,1::2],
x[1::2,1::2]) (position-major channels); mmcv's PatchMerging uses ``nn.Unfold`` (channel-major, dy before dx).
"""

from __future__ import annotations

import re

import torch


def _unfold_order_reduction(w: torch.Tensor) -> torch.Tensor:
    out_c, in_c = w.shape
    return w.reshape(out_c, 4, in_c // 4)[:, [0, 2, 1, 3], :].transpose(1, 2).reshape(out_c, in_c)


def _unfold_order_norm(v: torch.Tensor) -> torch.Tensor:
    return v.reshape(4, v.shape[0] // 4)[[0, 2, 1, 3], :].transpose(0, 1).reshape(v.shape[0])


def original_to_mmdet(state_dict: dict) -> dict:
    """Microsoft Swin names -> mmdet ``SwinTransformer`` names (no ``backbone.`` prefix)."""
    out = {}
    for k, v in state_dict.items():
        if k.startswith("head") or k.endswith("attn_mask") or k.startswith("norm."):
            continue
        if k.startswith("layers"):
            new = k.replace("attn.", "attn.w_msa.").replace("mlp.fc1.", "ffn.layers.0.0.")
            new = new.replace("mlp.fc2.", "ffn.layers.1.")
            if "downsample.reduction." in k:
                v = _unfold_order_reduction(v)
            elif "downsample.norm." in k:
                v = _unfold_order_norm(v)
            k = new.replace("layers", "stages", 1)
        elif k.startswith("patch_embed.proj."):
            k = k.replace("patch_embed.proj.", "patch_embed.projection.")
        out[k] = v
    return out


def hf_to_mmdet(state_dict: dict, relative_position_index: torch.Tensor | None = None) -> dict:
    """``transformers`` ``SwinBackbone`` state dict -> mmdet names.

    HF keeps ``relative_position_index`` out of its state dict; pass mmdet's (the module's own buffer) to
    get a complete, strictly loadable dict."""
    original = {}
    qkv: dict[str, dict[str, torch.Tensor]] = {}
    for k, v in state_dict.items():
        k = k.removeprefix("swin.")
        if k.startswith("hidden_states_norms.stage"):
            stage, leaf = re.match(r"hidden_states_norms\.stage(\d+)\.(\w+)", k).groups()
            original[f"__norm{int(stage) - 1}.{leaf}"] = v
            continue
        if k.startswith("layernorm."):
            continue
        k = k.replace("embeddings.patch_embeddings.projection.", "patch_embed.proj.")
        k = k.replace("embeddings.norm.", "patch_embed.norm.").replace("encoder.layers.", "layers.")
        k = k.replace("layernorm_before.", "norm1.").replace("layernorm_after.", "norm2.")
        k = k.replace("attention.relative_position_bias.relative_position_bias_table",
                      "attn.relative_position_bias_table")
        k = k.replace("attention.o_proj.", "attn.proj.")
        m = re.match(r"(.*)attention\.([qkv])_proj\.(weight|bias)$", k)
        if m:
            qkv.setdefault(f"{m.group(1)}attn.qkv.{m.group(3)}", {})[m.group(2)] = v
            continue
        original[k] = v
    for k, parts in qkv.items():
        original[k] = torch.cat([parts["q"], parts["k"], parts["v"]], 0)
    out = original_to_mmdet({k: v for k, v in original.items() if not k.startswith("__")})
    out.update({k[2:]: v for k, v in original.items() if k.startswith("__")})
    if relative_position_index is not None:
        for k in [k for k in out if k.endswith("relative_position_bias_table")]:
            out[k.replace("relative_position_bias_table", "relative_position_index")] = relative_position_index
    return out
