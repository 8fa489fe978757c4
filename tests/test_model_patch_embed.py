"""The patch stems in low precision: the DiT's 4 -> 1024 16 x 16 stem and ViT-L's 3 -> 1024 14 x 14.

torch 2.13's oneDNN bf16 convolution returns errors of O(1) for the DiT stem on CPUs with AMX;
PatchEmbed runs as a matrix product over unfolded patches, which these tests check against the
float32 convolution holding the same weights.
"""
import pytest
import torch
import torch.nn.functional as F

from ppd_ros.model.dit import PatchEmbed


@pytest.mark.parametrize('channels, patch', [(4, 16), (3, 14)])
def test_patch_embedding_is_the_strided_convolution(channels, patch):
    torch.manual_seed(0)
    embed = PatchEmbed(patch, channels, 64)
    x = torch.randn(2, channels, 3 * patch, 5 * patch)
    with torch.no_grad():
        conv = F.conv2d(x, embed.proj.weight, embed.proj.bias, stride=patch)
        torch.testing.assert_close(embed(x), conv.flatten(2).transpose(1, 2),
                                   rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('channels, patch', [(4, 16), (3, 14)])
@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_patch_embeddings_in_low_precision(channels, patch, dtype):
    torch.manual_seed(0)
    embed = PatchEmbed(patch, channels, 1024)
    x = torch.randn(1, channels, 8 * patch, 6 * patch)
    with torch.no_grad():
        exact = embed(x)
        low = embed.to(dtype)(x.to(dtype)).float()
        with torch.autocast('cpu', dtype=torch.bfloat16):
            autocast = embed.float()(x).float()
    assert (low - exact).abs().max() < 0.02 * exact.abs().max()
    assert (autocast - exact).abs().max() < 0.02 * exact.abs().max()
