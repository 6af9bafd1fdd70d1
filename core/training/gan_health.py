"""Health checks of GAN training: the failure modes of adversarial training, said plainly.

- **Non-finite losses** stop the run (:func:`gan_nonfinite_message`) with advice that suits GANs
  (DCGAN's learning rate and Adam betas, a logit output for the discriminator, Tanh for the
  generator).
- **The discriminator wins** (:func:`discriminator_wins_warning`): D(G(z)), the discriminator's
  mean probability for generated images, stays below :data:`D_WINS_FAKE` for a whole epoch while
  the generator's loss climbs (its last third of steps above its first third, or above the
  previous epoch's): the generator's gradient has vanished and it no longer learns.
- **Mode collapse** (:func:`mode_collapse_warning`): the fixed-noise samples are nearly identical,
  i.e. their mean pairwise L2 distance is below :data:`COLLAPSE_SHARE` of the real images'.

No state here: the trainer (:mod:`core.training.gan`) computes the numbers and says each warning
once per run, when its check holds at two epoch ends in a row: early in a run the discriminator
usually wins for a while (DCGAN recovers from it), and a generator a few steps old makes
near-identical images.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

D_WINS_FAKE = 0.05  # D(G(z)) below this for an epoch: the discriminator tells every fake apart
COLLAPSE_SHARE = 0.10  # generated samples' diversity below this share of the real images': collapse


def mean_pairwise_distance(images: torch.Tensor) -> float:
    """The mean L2 distance between every two of ``images`` (n, ...) as float, in their own units
    (0.0 for fewer than two)."""
    n = int(images.shape[0])
    if n < 2:
        return 0.0
    flat = images.reshape(n, -1).float()
    dist = torch.cdist(flat[None], flat[None])[0]
    return float(dist.sum() / (n * (n - 1)))  # the diagonal is 0


def gan_nonfinite_message(which: str, value: float, epoch: int, step: int, lr: float, amp: str,
                          grad_clip: float) -> str:
    """The failure for a NaN or infinite ``which`` loss ("discriminator" or "generator")."""
    kind = "NaN" if value != value else "infinite"
    tips = [f"lower the learning rate (now {lr:g}; DCGAN trains with Adam at 0.0002, betas 0.5, 0.999)",
            "let the discriminator end in a plain logit (no Sigmoid: the loss applies it) and the generator "
            "in Tanh"]
    if grad_clip <= 0:
        tips.append("turn on gradient clipping (e.g. grad_clip 1.0)")
    if amp == "fp16":
        tips.append("use bf16 or float32 instead of fp16")
    return (f"Training stopped: the {which}'s loss became {kind} at epoch {epoch}, step {step}. "
            f"Try: {'; '.join(tips)}.")


def discriminator_wins_warning(epoch: int, d_fake: float, g_losses: Sequence[float],
                               previous_g_loss: float | None) -> str | None:
    """The warning when the discriminator wins (see the module docstring), else ``None``.

    ``d_fake`` is the epoch's mean D(G(z)), ``g_losses`` the generator's loss at each of its steps,
    ``previous_g_loss`` the previous epoch's mean (``None`` for the first epoch)."""
    if d_fake >= D_WINS_FAKE or len(g_losses) < 3:
        return None
    third = max(1, len(g_losses) // 3)
    first = sum(g_losses[:third]) / third
    last = sum(g_losses[-third:]) / third
    mean = sum(g_losses) / len(g_losses)
    rising = last > first or (previous_g_loss is not None and mean > previous_g_loss)
    if not rising:
        return None
    return (f"The discriminator is winning: at epoch {epoch} it gives generated images a probability of "
            f"{d_fake:.3f} of being real on average, and the generator's loss keeps climbing ({first:.3g} → "
            f"{last:.3g}), so the generator hardly learns any more. Try: a lower learning rate for the "
            "discriminator or fewer discriminator steps (n_critic 1), label smoothing (e.g. 0.1), the hinge "
            "loss, or a smaller discriminator.")


def mode_collapse_warning(epoch: int, generated_spread: float, real_spread: float) -> str | None:
    """The warning when the generated samples are nearly alike (mean pairwise distance below
    :data:`COLLAPSE_SHARE` of the real images'), else ``None``. Both spreads are in the same units."""
    if real_spread <= 0 or generated_spread >= COLLAPSE_SHARE * real_spread:
        return None
    share = generated_spread / real_spread
    return (f"Mode collapse: after epoch {epoch} the generated samples are nearly all alike (they differ "
            f"{share:.0%} as much as real images do), so the generator found one output that fools the "
            "discriminator. Try: a lower learning rate, label smoothing (e.g. 0.1), the hinge loss, more "
            "discriminator steps (n_critic 2), or restarting from an earlier checkpoint with another seed.")
