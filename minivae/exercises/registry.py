"""The exercises, in the order of the path through them (docs/exercises.md).

Each names the files that hold its regions, the one-line hint its NotImplementedError gives, the
section that derives it, the tests that grade it (each with the property it proves, which the
verdict prints), the tests that depend on it without grading it (they fail while it is blank), and
one plausible wrong answer, a text replacement inside its regions, that its grading must catch
(tools/prove_exercises.py proves both in CI).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Exercise:
    name: str
    files: tuple[str, ...]
    hint: str
    reference: str  # where the derivation is
    grading: tuple[tuple[str, str], ...]  # (pytest node id, the property it proves)
    dependents: tuple[str, ...]  # node ids that fail while the exercise is blank
    wrong: tuple[str, str, str, str]  # (file, text, wrong text, what the slip is)

    @property
    def message(self) -> str:
        """What the learner's copy raises in the exercise's place."""
        return f"{self.hint} ({self.reference})"


T = "tests/"

# Canaries: a fixed handful of tests across the floors, run beside every exercise's grading in the
# proof; one that an exercise breaks is among that exercise's dependents.
CANARIES = (
    T + "test_floors.py::test_the_table_lists_every_file",
    T + "test_engine.py::test_no_grad_records_no_graph",
    T + "test_nn.py::test_linear_computes_x_times_w_transpose_plus_b",
    T + "test_conv.py::test_conv2d_output_size_formula",
    T + "test_pca.py::test_bad_n_components_raises",
    T + "test_math.py::test_log_probs_and_entropy_are_the_textbook_densities",
    T + "test_vae.py::test_vae_loss_is_rec_plus_kl_in_nats_per_image",
    T + "test_pixelcnn.py::test_log_prob_is_the_sum_of_bernoulli_terms_of_the_logits",
)

EXERCISES: tuple[Exercise, ...] = (
    Exercise(
        "unbroadcast", ("minivae/tensor.py",),
        "sum grad over the axes broadcasting prepended, then over those it stretched from size 1",
        "docs/exercises.md §1",
        ((T + "test_engine.py::test_unbroadcast_examples", "folds known shapes back"),
         (T + "test_engine.py::test_unbroadcast_is_the_adjoint_of_broadcasting",
          "<unbroadcast(g), x> = <g, broadcast(x)>: the adjoint of broadcasting"),
         (T + "test_engine.py::test_a_broadcast_op_returns_gradients_of_the_input_shapes",
          "a broadcast op's gradients have its inputs' shapes")),
        (),
        ("minivae/tensor.py", "grad.sum(axis=axis, keepdims=True)", "grad.sum(axis=axis)",
         "sums a stretched axis away instead of keeping it at size 1")),
    Exercise(
        "backward-rules", ("minivae/functional.py",),
        "each input's cotangent is y_bar times the derivative in that input, in that input's shape",
        "docs/exercises.md §2",
        ((T + "test_ops.py::test_binary_op_gradients_with_broadcasting[mul]",
          "mul's gradients equal finite differences, broadcasting included"),
         (T + "test_ops.py::test_matmul_2d", "matmul's gradients equal finite differences"),
         (T + "test_ops.py::test_matmul_batched_with_batch_broadcasting",
          "batched matmul's gradients, batch axes broadcast, equal finite differences"),
         (T + "test_ops.py::test_matmul_with_a_constant_ndarray_on_the_left",
          "a constant on the left gets no gradient, the Tensor its own")),
        (),
        ("minivae/functional.py", "unbroadcast(kernels.matmul(a.swapaxes(-1, -2), y_bar), b.shape)",
         "kernels.matmul(a.swapaxes(-1, -2), y_bar)",
         "b_bar left with the batch axes broadcasting gave it")),
    Exercise(
        "topological-sort", ("minivae/tensor.py",),
        "a depth-first search with an explicit stack; append a node once all its inputs are in",
        "docs/exercises.md §3",
        ((T + "test_engine.py::test_fan_out_sums_the_gradients",
          "a node used twice gets the sum of both gradients"),
         (T + "test_engine.py::test_a_chain_10000_ops_deep_backpropagates",
          "a chain 10,000 ops deep backpropagates (no recursion limit)"),
         (T + "test_engine.py::test_backward_follows_the_graph_as_recorded_even_if_requires_grad_changes",
          "backward follows the graph as recorded")),
        (),
        ("minivae/tensor.py", "stack.append((node, True))", "order.append(node)",
         "a node put in the order before its inputs (pre-order)")),
    Exercise(
        "adam", ("minivae/optim.py",),
        "update both moments in place, correct their bias by 1 - beta**t, then step p",
        "docs/exercises.md §4",
        ((T + "test_nn.py::test_adam_with_a_constant_gradient_moves_lr_per_step",
          "a constant gradient moves each parameter by lr per step"),
         (T + "test_nn.py::test_adam_with_weight_decay_matches_hand_computed_steps",
          "steps equal the equations computed by hand"),
         (T + "test_nn.py::test_adam_trajectory_matches_torch", "the trajectory equals PyTorch's")),
        (),
        ("minivae/optim.py", "m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)",
         "m_hat, v_hat = m, v", "no bias correction")),
    Exercise(
        "im2col", ("minivae/kernels/numpy/conv.py",),
        "for each kernel offset (i, j), copy one strided window of x_pad into its rows of cols",
        "docs/exercises.md §5",
        ((T + "test_conv_kernels.py::"
          "test_numpy_doors_im2col_and_col2im_are_the_element_by_element_loops",
          "cols equals its definition element by element"),
         (T + "test_conv.py::test_conv2d_gradcheck",
          "conv2d's gradients equal finite differences (col2im is im2col's adjoint)"),
         (T + "test_conv.py::test_transposed_conv_is_the_adjoint_of_conv",
          "the transposed convolution is the adjoint of the convolution")),
        (T + "test_conv.py::test_conv2d_output_size_formula",
         T + "test_pixelcnn.py::test_log_prob_is_the_sum_of_bernoulli_terms_of_the_logits"),
        ("minivae/kernels/numpy/conv.py",
         "x_pad[:, :, i:i + stride * H_out:stride, j:j + stride * W_out:stride]",
         "x_pad[:, :, i:i + H_out, j:j + W_out]", "the stride forgotten")),
    Exercise(
        "pca", ("minivae/models/pca.py",),
        "the centred data's covariance, its eigendecomposition (it is symmetric), the k leading directions",
        "docs/derivations.md §1",
        ((T + "test_pca.py::test_components_are_orthonormal_and_sorted",
          "components are orthonormal, by eigenvalue descending"),
         (T + "test_pca.py::test_reconstruction_error_is_the_sum_of_discarded_eigenvalues",
          "the reconstruction error is the sum of the discarded eigenvalues"),
         (T + "test_pca.py::test_matches_svd_of_centred_data_up_to_sign",
          "the components are the SVD's, up to sign")),
        (),
        ("minivae/models/pca.py", "order = np.argsort(eigenvalues)[::-1]",
         "order = np.argsort(eigenvalues)", "eigh's ascending order kept: the smallest directions")),
    Exercise(
        "reparameterize", ("minivae/distributions.py",),
        "z = mu + sigma * eps, log_var being the log of the variance; then z's partials in mu, log_var",
        "docs/derivations.md §5",
        ((T + "test_math.py::test_rsample_has_the_moments_the_kl_assumes",
          "samples have mean mu and variance exp(log_var)"),
         (T + "test_math.py::test_rsample_gradient_equals_autodiff_and_finite_differences",
          "the hand-derived backward equals autodiff and finite differences")),
        (T + "test_vae.py::test_vae_loss_is_rec_plus_kl_in_nats_per_image",),
        ("minivae/distributions.py", "sigma = np.exp(0.5 * log_var)", "sigma = np.exp(log_var)",
         "the variance where the standard deviation belongs")),
    Exercise(
        "kl-closed-form", ("minivae/distributions.py",),
        "expand E_q[ln q - ln p] with E z = mu, E z^2 = mu^2 + sigma^2; then its two partials",
        "docs/derivations.md §7",
        ((T + "test_math.py::test_kl_standard_equals_quadrature",
          "the KL equals numerical integration"),
         (T + "test_math.py::test_notes_closing_formula_has_a_sign_slip",
          "the notes' closing formula is off by exactly 1 from the KL; yours is not"),
         (T + "test_math.py::test_kl_standard_gradient_equals_autodiff_and_finite_differences",
          "the hand-derived gradient equals autodiff and finite differences")),
        (T + "test_vae.py::test_vae_loss_is_rec_plus_kl_in_nats_per_image",),
        ("minivae/distributions.py", "(np.expm1(log_var) - log_var)",
         "(np.exp(log_var) + 1 - log_var)", "the notes' sign slip: +1/2 where -1/2 belongs")),
    Exercise(
        "bernoulli-from-logits", ("minivae/kernels/numpy/dense.py",),
        "-[t ln sigma(l) + (1 - t) ln(1 - sigma(l))] rewritten so that no exp can overflow",
        "docs/exercises.md §9",
        ((T + "test_math.py::test_bernoulli_log_prob_is_the_textbook_formula_and_finite",
          "log p(x) is the textbook formula, finite for logits up to 1e4"),
         (T + "test_ops.py::test_bce_with_logits_is_finite_and_matches_the_naive_formula",
          "BCE-with-logits is finite and equals the naive formula where that is finite"),
         (T + "test_ops.py::test_bce_with_logits_gradients_wrt_logits_and_target",
          "its gradients equal finite differences")),
        (T + "test_vae.py::test_vae_loss_is_rec_plus_kl_in_nats_per_image",
         T + "test_pixelcnn.py::test_log_prob_is_the_sum_of_bernoulli_terms_of_the_logits"),
        ("minivae/kernels/numpy/dense.py", "np.maximum(l, 0) - l * t + np.log1p(np.exp(-np.abs(l)))",
         "np.log1p(np.exp(l)) - l * t", "the naive softplus, which overflows")),
    Exercise(
        "elbo", ("minivae/models/latent.py",),
        "q = encode(x); one reparameterised z; rec = -ln p(x|z) per image; the prior's KL",
        "docs/derivations.md §3",
        ((T + "test_vae.py::test_vae_loss_is_rec_plus_kl_in_nats_per_image",
          "the loss is rec + KL in nats per image"),
         (T + "test_pixelvae.py::test_eval_mode_reports_the_true_elbo_whatever_the_training_weights",
          "rec is -ln p(x|z) at the z the loss drew, the KL its closed form"),
         (T + "test_vae.py::test_vae_loss_gradient_matches_finite_differences",
          "the loss's gradients equal finite differences at a fixed eps")),
        (),
        ("minivae/models/latent.py", "z = q.rsample(rng)", "z = q.mu",
         "the mean where a sample belongs")),
    Exercise(
        "iwae", ("minivae/metrics.py",),
        "weights p(x, z_i) / q(z_i|x) of k reparameterised z_i, averaged inside the log, stably",
        "docs/derivations.md §3",
        ((T + "test_metrics.py::test_iwae_nll_with_one_sample_is_minus_the_elbo_on_the_same_draws",
          "k = 1 gives -ELBO on the same draws"),
         (T + "test_metrics.py::test_iwae_nll_falls_with_k_stays_above_minus_log_px_and_approaches_it",
          "it falls with k, stays above -ln p(x) and approaches it")),
        (),
        ("minivae/metrics.py", ".data - math.log(k)", ".data",
         "a sum of the weights where their mean belongs")),
    Exercise(
        "aae-phases", ("minivae/models/aae.py",),
        "the discriminator tells prior samples (1) from codes (0); the generator wants codes read 1",
        "docs/exercises.md §12",
        ((T + "test_aae.py::test_losses_match_their_formulas",
          "the discriminator's and the generator's losses match their formulas"),
         (T + "test_aae.py::test_each_phase_moves_its_loss_the_right_way",
          "each phase lowers its own loss, and the generator fools the discriminator"),
         (T + "test_aae.py::test_each_phase_updates_only_its_own_parameters",
          "each phase updates only its own parameters")),
        (),
        ("minivae/models/aae.py", "np.ones(len(z_prior)), np.zeros(len(z))",
         "np.zeros(len(z_prior)), np.ones(len(z))", "the targets swapped")),
    Exercise(
        "pixelcnn-masks", ("minivae/nn.py", "minivae/functional.py"),
        "which taps may pixel (centre, centre) read: the rows above, its left, itself for B",
        "docs/derivations.md §9",
        ((T + "test_pixelcnn.py::test_every_mask_holds_exactly_its_taps",
          "every mask holds exactly its taps"),
         (T + "test_pixelcnn.py::"
          "test_each_logit_sees_exactly_its_designed_field_and_never_itself_or_later",
          "each logit sees exactly its field, never itself or a later pixel"),
         (T + "test_ops.py::test_shift_down_moves_rows_down_and_its_gradient_up",
          "shift_down moves rows down and its gradient up")),
        (T + "test_pixelcnn.py::test_log_prob_is_the_sum_of_bernoulli_terms_of_the_logits",),
        ("minivae/nn.py", 'mask[centre, :centre + mask_type.endswith("B")] = 1',
         "mask[centre, :centre + 1] = 1", "a mask including the centre")),
    Exercise(
        "gated-activation", ("minivae/kernels/numpy/dense.py",),
        "split axis 1 into halves a, b; y = tanh(a) sigma(b); differentiate in a and b",
        "docs/derivations.md §9",
        ((T + "test_ops.py::test_gated_tanh_is_tanh_of_one_half_times_sigmoid_of_the_other",
          "y = tanh(a) sigma(b), its gradients equal finite differences"),),
        (T + "test_pixelcnn.py::test_log_prob_is_the_sum_of_bernoulli_terms_of_the_logits",),
        ("minivae/kernels/numpy/dense.py", "y_bar * s * (1 - t * t)", "y_bar * s * (1 - t)",
         "tanh' written 1 - tanh")),
    Exercise(
        "cached-sampler", ("minivae/models/pixelcnn.py",),
        "once row r - 1 is sampled, compute the vertical stack's row r - 1 once: link and next layer",
        "docs/derivations.md §9",
        ((T + "test_pixelcnn.py::test_cached_and_naive_samplers_draw_the_same_images_for_different_h",
          "the cached sampler draws the naive sampler's images"),
         (T + "test_pixelcnn.py::test_a_sample_is_a_fixed_point_of_teacher_forcing_with_its_noise",
          "a sample is a fixed point of teacher forcing with its noise")),
        (),
        ("minivae/models/pixelcnn.py", "self.vertical.row(self.v_in, r - 1, self.W)",
         "self.vertical.row(self.v_in, r, self.W)", "row r read before it is sampled")),
    Exercise(
        "mixture-log-prob", ("minivae/distributions.py",),
        "ln p(z) = logsumexp_k [ln pi_k + sum_j ln N(z_j | m_kj, sigma_kj^2)], pi = softmax(logits)",
        "docs/derivations.md §8",
        ((T + "test_math.py::test_mixture_log_prob_is_log_of_weighted_sum",
          "ln p(z) is the log of the weighted sum of the components"),
         (T + "test_math.py::test_mixture_integrates_to_one_and_samples_have_its_mean",
          "p integrates to one"),
         (T + "test_priors.py::test_mixture_log_prob_is_the_direct_numpy_density",
          "ln p(z) equals the direct density")),
        (),
        ("minivae/distributions.py", "F.log_softmax(self.logits) + log_pz_k",
         "self.logits + log_pz_k", "the logits used as log-weights, unnormalised")),
    Exercise(
        "vamp-prior", ("minivae/priors.py",),
        "the model's own encoder at the K pseudo-inputs gives the components, weights all 1/K",
        "docs/derivations.md §8",
        ((T + "test_priors.py::"
          "test_vamp_components_are_the_encoder_at_the_pseudo_inputs_with_equal_weights",
          "the components are the encoder at the pseudo-inputs, with equal weights"),
         (T + "test_priors.py::test_vamp_with_the_whole_training_set_is_the_aggregate_posterior",
          "with the training set as pseudo-inputs it is the aggregate posterior")),
        (),
        ("minivae/priors.py", "q.mu, q.log_var)", "q.mu, q.sigma)",
         "the standard deviation where the log-variance belongs")),
)

BY_NAME = {e.name: e for e in EXERCISES}
