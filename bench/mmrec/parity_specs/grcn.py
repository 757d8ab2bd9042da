"""GRCN step parity: MMRec's GRCN against mmjax.models.grcn.

MMRec's GRCN imports torch_geometric (MessagePassing, softmax, dropout_adj),
which the bench environment lacks: put PyG 2.4.0 (pure Python, no compiled
extensions needed for this model) on the path for the MMRec side:
`pip install --target <dir> --no-deps torch_geometric==2.4.0`, then
PYTHONPATH=.:<dir>. (PyG 2.8 imports transformers through torch_geometric.llm,
which fails on patches.py's torchvision stub, whose __spec__ is None.)
Edge dropout is 0 in MMRec's GRCN (hard-coded). MMRec's visual modality is
`image` here, whose whole preference table MMRec also regularises.

Measured 2026-11-23 (2-core AMD EPYC, CPU, float32, batch 256, seed 0):
300 x 200 export (3,199 training pairs): loss err 0.0, max grad err 1.9e-9,
worst relative grad err 4.9e-7; synth30k (1600 x 1000): loss err 6.0e-8,
max grad err 3.7e-9, worst relative grad err 1.1e-6. All 8 parameters.
"""

NAME = 'GRCN'

SPEC = dict(
    module='mmjax.models.grcn',
    hparams={'embedding_size': 64, 'latent_embedding': 64, 'n_layers': 3,
             'reg_weight': 0.1, 'learning_rate': 1e-3},
    model_cfg={'name': 'grcn', 'embed_dim': 64, 'content_dim': 64,
               'num_layers': 2, 'num_routings': 3, 'reg_weight': 0.1,
               'weight_mode': 'confid', 'routing': 'mmrec', 'pruning': True,
               'fusion': 'concat', 'dropout': 0.0,
               'full_preference_reg': 'image'},
    params={
        'id_gcn.id_embedding': ('id_embedding', 'identity'),
        'model_specific_conf': ('conf', 'identity'),
        'v_gcn.preference': (('preference', 0), 'identity'),
        't_gcn.preference': (('preference', 1), 'identity'),
        'v_gcn.MLP.weight': (('mlp', 0, 'w'), 'transpose'),
        'v_gcn.MLP.bias': (('mlp', 0, 'b'), 'identity'),
        't_gcn.MLP.weight': (('mlp', 1, 'w'), 'transpose'),
        't_gcn.MLP.bias': (('mlp', 1, 'b'), 'identity'),
    },
    features=True,
)
