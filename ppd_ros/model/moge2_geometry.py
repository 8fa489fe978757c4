"""MoGe-2's ``infer``: metric depth, validity mask and intrinsics from the network outputs
(moge2-reference.md section 4).

    mask     = sigmoid(logit) > 0.5
    focal, shift = argmin over s of || f(s) xy / (z + s) - uv ||  on a 64 x 64 nearest subsample
               (f(s) in closed form; MINPACK Levenberg-Marquardt from s = 0 with ftol 1e-3, which
               stops early on purpose: the reference's result, not the converged minimum)
    K        = [[f/2 sqrt(1+ar^2)/ar, 0, 1/2], [0, f/2 sqrt(1+ar^2), 1/2], [0, 0, 1]]  (normalised)
    depth    = (z + shift) * metric_scale;   mask &= z + shift > 0
    points   = depth K^-1 [u', v', 1]   with pixel centres u' = (j + 0.5) / W, v' = (i + 0.5) / H

uv and the focal are in units of half the image diagonal. With known intrinsics only the shift
is solved (MoGe's ``fov_x`` path, generalised to fx != fy and any principal point).

The solver is scipy's ``least_squares(method='lm', ftol=1e-3)``. scipy >= 1.16 (lmder with
its own two-point Jacobian and Jacobian scaling) and < 1.16 (lmdif, unit scaling) agree unless
a step needs damping; requirements.txt pins 1.17.1, the version the reference measurements
were made with.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .moge2 import MoGe2Model, view_plane_uv

#: Size of the nearest-neighbour subsample the focal and shift are solved on.
SOLVE_SIZE = 64
PRECISIONS = {'fp32': None, 'fp16': torch.float16, 'bf16': torch.bfloat16}


@dataclass(frozen=True)
class KnownIntrinsics:
    """A camera's pinhole intrinsics in pixels for the H x W image (integer pixel centres, as
    CameraInfo and OpenCV)."""

    fx: float
    fy: float
    cx: float
    cy: float

    @classmethod
    def from_fov_x(cls, fov_x_deg: float, width: int, height: int) -> 'KnownIntrinsics':
        """Square pixels and a centred principal point with horizontal field of view fov_x."""
        f = width / (2 * math.tan(math.radians(fov_x_deg) / 2))
        return cls(f, f, (width - 1) / 2, (height - 1) / 2)

    def normalised(self, width: int, height: int) -> np.ndarray:
        """3 x 3 K with row 0 divided by W and row 1 by H (pixel centres at (j + 0.5) / W)."""
        return np.array([[self.fx / width, 0, (self.cx + 0.5) / width],
                         [0, self.fy / height, (self.cy + 0.5) / height],
                         [0, 0, 1]], dtype=np.float32)

    def view_plane(self, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
        """(focal (2,), centre (2,)) with uv = focal * (x / z, y / z) + centre in half-diagonal
        units; (f, f) and (0, 0) for a centred square-pixel camera."""
        diagonal = math.hypot(width, height)
        focal = np.array([2 * self.fx / diagonal, 2 * self.fy / diagonal])
        centre = np.array([(2 * (self.cx + 0.5) - width) / diagonal,
                           (2 * (self.cy + 0.5) - height) / diagonal])
        return focal, centre


@dataclass
class MoGe2Output:
    """``infer`` results for a batch, all float32 / bool tensors on the model's device."""

    depth: torch.Tensor          # (B, H, W) metres (relative without a scale head); +inf off mask
    mask: torch.Tensor           # (B, H, W) bool
    intrinsics: torch.Tensor     # (B, 3, 3) normalised K
    points: torch.Tensor         # (B, H, W, 3) camera frame (x right, y down, z forward)
    focal: torch.Tensor          # (B,) x focal in half-diagonal units
    shift: torch.Tensor          # (B,) z shift of the affine points
    metric_scale: torch.Tensor | None  # (B,)
    normal: torch.Tensor | None  # (B, H, W, 3)
    intrinsics_estimated: bool   # False when the camera's intrinsics were given


def image_plane_uv(height: int, width: int, device=None) -> torch.Tensor:
    """(H, W, 2) view-plane coordinates of every pixel of an H x W image."""
    return view_plane_uv(height, width, width / height, device=device).permute(1, 2, 0)


def nearest_subsample(values: torch.Tensor, size: int = SOLVE_SIZE) -> torch.Tensor:
    """(B, H, W, C) -> (B, size, size, C) with nearest sampling (repeats maps smaller than size)."""
    return F.interpolate(values.permute(0, 3, 1, 2), (size, size),
                         mode='nearest').permute(0, 2, 3, 1)


def _least_squares_lm(residuals) -> float:
    from scipy.optimize import least_squares
    return float(least_squares(residuals, x0=0.0, method='lm', ftol=1e-3).x[0])


def solve_focal_shift(xy: np.ndarray, z: np.ndarray, uv: np.ndarray) -> tuple[float, float]:
    """(focal, shift) as float32 for float32 samples xy (N, 2), z (N,), uv (N, 2).

    For a shift s the best focal is f(s) = sum(p uv) / sum(p^2) with p = xy / (z + s); the
    residuals f(s) p - uv (float64) are minimised over s alone.
    """
    def residuals(shift):
        projected = xy / (z + shift)[:, None]
        focal = (projected * uv).sum() / np.square(projected).sum()
        return (focal * projected - uv).ravel()

    shift = np.float32(_least_squares_lm(residuals))
    projected = xy / (z + shift)[:, None]
    focal = (projected * uv).sum() / np.square(projected).sum()
    return float(np.float32(focal)), float(shift)


def solve_shift(xy: np.ndarray, z: np.ndarray, uv: np.ndarray, focal: np.ndarray,
                centre: np.ndarray) -> float:
    """float32 shift s minimising || focal xy / (z + s) - (uv - centre) || (focal, centre (2,))."""
    target = uv - centre if np.any(centre) else uv

    def residuals(shift):
        return (focal * xy / (z + shift)[:, None] - target).ravel()

    return float(np.float32(_least_squares_lm(residuals)))


def recover_focal_shift(points: torch.Tensor, mask: torch.Tensor,
                        known: tuple[np.ndarray, np.ndarray] | None = None
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image (focal (B,), shift (B,)) float32 from affine points (B, H, W, 3) and mask.

    ``known`` = (focal (2,), centre (2,)) in view-plane units solves the shift only. Fewer than
    two masked samples give focal 1 (or the known one) and shift 0.
    """
    b, height, width, _ = points.shape
    uv = nearest_subsample(image_plane_uv(height, width, points.device)[None])[0]
    sampled = nearest_subsample(points.float())
    keep = nearest_subsample(mask.float()[..., None])[..., 0] > 0
    uv_np = uv.cpu().numpy()
    focals, shifts = [], []
    for i in range(b):
        sel = keep[i].cpu().numpy()
        xyz = sampled[i].cpu().numpy()[sel]
        xy, z, uv_i = xyz[:, :2], xyz[:, 2], uv_np[sel]
        if known is not None:
            focal, centre = known
            shift = solve_shift(xy, z, uv_i, focal, centre) if len(z) >= 2 else 0.0
            focals.append(float(np.float32(focal[0])))
        elif len(z) >= 2:
            focal, shift = solve_focal_shift(xy, z, uv_i)
            focals.append(focal)
        else:
            focal, shift = 1.0, 0.0
            focals.append(focal)
        shifts.append(shift)
    return (torch.tensor(focals, dtype=torch.float32, device=points.device),
            torch.tensor(shifts, dtype=torch.float32, device=points.device))


def intrinsics_from_focal(focal: torch.Tensor, aspect: float) -> torch.Tensor:
    """(B, 3, 3) normalised K, principal point at the centre, from half-diagonal focals."""
    diagonal = (1 + aspect ** 2) ** 0.5
    fx = focal / 2 * diagonal / aspect
    fy = focal / 2 * diagonal
    K = torch.zeros(focal.shape[0], 3, 3, dtype=torch.float32, device=focal.device)
    K[:, 0, 0], K[:, 1, 1] = fx, fy
    K[:, 0, 2] = K[:, 1, 2] = 0.5
    K[:, 2, 2] = 1.0
    return K


def depth_to_points(depth: torch.Tensor, intrinsics: torch.Tensor) -> torch.Tensor:
    """(B, H, W, 3) camera-frame points of depth (B, H, W) through normalised K (B, 3, 3)."""
    b, height, width = depth.shape
    u = torch.linspace(0.5 / width, (width - 0.5) / width, width, device=depth.device)
    v = torch.linspace(0.5 / height, (height - 0.5) / height, height, device=depth.device)
    pixels = torch.stack((u.expand(height, width), v[:, None].expand(height, width),
                          torch.ones(height, width, device=depth.device)), dim=-1)
    rays = torch.einsum('bij,hwj->bhwi', torch.linalg.inv(intrinsics), pixels)
    return depth[..., None] * rays


def autocast_context(device: torch.device, precision: str):
    """torch.autocast for a precision name (a no-op context for fp32)."""
    if precision not in PRECISIONS:
        raise ValueError(f'precision must be one of {sorted(PRECISIONS)}, got {precision!r}')
    dtype = PRECISIONS[precision]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def geometry_from_outputs(outputs: dict[str, torch.Tensor], *, fov_x: float | None = None,
                          camera: KnownIntrinsics | None = None,
                          apply_mask: bool = True) -> MoGe2Output:
    """MoGe-2's post-processing (module docstring) of forward outputs at H x W (fp32)."""
    points = outputs['points'].float()
    b, height, width, _ = points.shape
    aspect = width / height
    mask_prob = outputs.get('mask')
    mask = (mask_prob.float() > 0.5 if mask_prob is not None
            else torch.ones(b, height, width, dtype=torch.bool, device=points.device))
    if fov_x is not None and camera is not None:
        raise ValueError('give fov_x or camera intrinsics, not both')
    if camera is not None:
        focal_uv, centre_uv = camera.view_plane(width, height)
        focal, shift = recover_focal_shift(points, mask, (focal_uv, centre_uv))
        K = torch.as_tensor(camera.normalised(width, height), device=points.device)
        intrinsics = K.expand(b, 3, 3).clone()
    else:
        known = None
        if fov_x is not None:
            fov = torch.tensor(fov_x, dtype=torch.float32)
            f = aspect / (1 + aspect ** 2) ** 0.5 / torch.tan(torch.deg2rad(fov) / 2)
            known = (np.full(2, f.numpy(), dtype=np.float32), np.zeros(2))
        focal, shift = recover_focal_shift(points, mask, known)
        intrinsics = intrinsics_from_focal(focal, aspect)
    depth = points[..., 2] + shift[:, None, None]
    mask = mask & (depth > 0)
    points = depth_to_points(depth, intrinsics)
    scale = outputs.get('metric_scale')
    if scale is not None:
        scale = scale.float()
        points = points * scale[:, None, None, None]
        depth = depth * scale[:, None, None]
    normal = outputs.get('normal')
    normal = None if normal is None else normal.float()
    if apply_mask:
        inf = torch.tensor(float('inf'), device=depth.device)
        depth = torch.where(mask, depth, inf)
        points = torch.where(mask[..., None], points, inf)
        if normal is not None:
            normal = torch.where(mask[..., None], normal, torch.zeros_like(normal))
    return MoGe2Output(depth, mask, intrinsics, points, focal, shift, scale, normal,
                       intrinsics_estimated=fov_x is None and camera is None)


@torch.inference_mode()
def infer(model: MoGe2Model, image: torch.Tensor, *, resolution_level: int = 9,
          num_tokens: int | None = None, grid: tuple[int, int] | None = None,
          fov_x: float | None = None, camera: KnownIntrinsics | None = None,
          apply_mask: bool = True, precision: str = 'fp32') -> MoGe2Output:
    """MoGe-2 on image (B, 3, H, W) or (3, H, W) in [0, 1].

    The ViT grid is ``grid``, or MoGe's for ``num_tokens`` (default: the resolution level's
    token budget, 3600 tokens at level 9 for the released network). ``precision`` 'fp16' /
    'bf16' autocasts the network (MoGe's own default is fp16); the post-processing is fp32.
    """
    if image.dim() == 3:
        image = image[None]
    device = next(model.parameters()).device
    image = image.to(device, torch.float32)
    if num_tokens is None and grid is None:
        num_tokens = model.config.num_tokens(resolution_level)
    with autocast_context(device, precision):
        outputs = model(image, num_tokens=num_tokens, grid=grid)
    return geometry_from_outputs(outputs, fov_x=fov_x, camera=camera, apply_mask=apply_mask)
