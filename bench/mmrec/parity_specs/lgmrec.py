"""Step parity of LGMRec (mmjax.models.lgmrec) against MMRec's LGMRec.

Deterministic on both sides: keep_rate 1 (MMRec's nn.Dropout(p=0) is the
identity) and no Gumbel noise. MMRec's noise cannot be switched off through
its config, so the MMRec side needs `mmrec_patch()` applied before the model
runs (it replaces torch's `F.gumbel_softmax` by the noise-free
softmax(logits / tau), which is what `gumbel=False` does on our side).
cl_weight and reg_weight are raised from the yaml's 1e-4 and 1e-6 so that
the contrastive and regularisation terms weigh in the gradients compared;
the other values are the yaml's 'baby' point.
"""

NAME = 'LGMRec'

SPEC = dict(
    module='mmjax.models.lgmrec',
    hparams={'embedding_size': 64, 'feat_embed_dim': 64,
             'cf_model': 'lightgcn', 'n_ui_layers': 2, 'n_mm_layers': 2,
             'n_hyper_layer': 1, 'hyper_num': 4, 'keep_rate': 1.0,
             'alpha': 0.3, 'cl_weight': 1e-2, 'reg_weight': 1e-3},
    model_cfg={'name': 'lgmrec', 'embed_dim': 64, 'cf_model': 'lightgcn',
               'num_layers': 2, 'num_mm_layers': 2, 'num_hyper_layers': 1,
               'hyper_num': 4, 'keep_rate': 1.0, 'alpha': 0.3,
               'cl_weight': 1e-2, 'reg_weight': 1e-3, 'tau': 0.2,
               'gumbel': False, 'eval_gumbel': False},
    params={'user_embedding.weight': ('user', 'identity'),
            'item_id_embedding.weight': ('item', 'identity'),
            'item_image_trs': (('trs', 0), 'identity'),
            'item_text_trs': (('trs', 1), 'identity'),
            'v_hyper': (('hyper', 0), 'identity'),
            't_hyper': (('hyper', 1), 'identity')},
    features=True,
)


def mmrec_patch():
  """Makes MMRec's LGMRec deterministic: Gumbel-softmax without the noise.

  To be called on the MMRec side before `calculate_loss` (only LGMRec calls
  `F.gumbel_softmax` in MMRec).

  Returns:
    A function that restores torch's own `gumbel_softmax`.
  """
  # pylint: disable=g-import-not-at-top
  import torch
  from torch.nn import functional
  # pylint: enable=g-import-not-at-top
  original = functional.gumbel_softmax

  def softmax_only(logits, tau=1.0, hard=False, eps=1e-10, dim=-1):
    del eps
    if hard:
      raise NotImplementedError('hard Gumbel-softmax is not patched.')
    return torch.softmax(logits / tau, dim=dim)

  def undo():
    functional.gumbel_softmax = original

  functional.gumbel_softmax = softmax_only
  return undo
