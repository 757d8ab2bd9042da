"""MGCN step-parity spec: MMRec's MGCN onto mmjax.models.mgcn.

MMRec's grid point cl_loss 0.01 (MGCN.yaml), 2 user-item layers, 1
item-graph layer, knn_k 10; MGCN has no dropout. Modality 0 is 'image' and
1 is 'text' (the harness's context orders them by name).
"""

NAME = 'MGCN'

SPEC = dict(
    module='mmjax.models.mgcn',
    hparams={'embedding_size': 64, 'n_ui_layers': 2, 'n_layers': 1,
             'knn_k': 10, 'lambda_coeff': 0.9, 'reg_weight': 1e-4,
             'cl_loss': 0.01},
    model_cfg={'name': 'mgcn', 'embed_dim': 64, 'num_layers': 2,
               'num_mm_layers': 1, 'knn_k': 10, 'reg_weight': 1e-4,
               'cl_weight': 0.01, 'temperature': 0.2,
               'train_features': True},
    params={
        'user_embedding.weight': ('user', 'identity'),
        'item_id_embedding.weight': ('item', 'identity'),
        'image_embedding.weight': (('features', 0), 'identity'),
        'text_embedding.weight': (('features', 1), 'identity'),
        'image_trs.weight': (('trs', 0, 'w'), 'transpose'),
        'image_trs.bias': (('trs', 0, 'b'), 'identity'),
        'text_trs.weight': (('trs', 1, 'w'), 'transpose'),
        'text_trs.bias': (('trs', 1, 'b'), 'identity'),
        'gate_v.0.weight': (('gate', 0, 'w'), 'transpose'),
        'gate_v.0.bias': (('gate', 0, 'b'), 'identity'),
        'gate_t.0.weight': (('gate', 1, 'w'), 'transpose'),
        'gate_t.0.bias': (('gate', 1, 'b'), 'identity'),
        'gate_image_prefer.0.weight': (('prefer', 0, 'w'), 'transpose'),
        'gate_image_prefer.0.bias': (('prefer', 0, 'b'), 'identity'),
        'gate_text_prefer.0.weight': (('prefer', 1, 'w'), 'transpose'),
        'gate_text_prefer.0.bias': (('prefer', 1, 'b'), 'identity'),
        'query_common.0.weight': (('query', 'w'), 'transpose'),
        'query_common.0.bias': (('query', 'b'), 'identity'),
        'query_common.2.weight': (('query', 'v'), 'transpose'),
    },
    features=True,
)
