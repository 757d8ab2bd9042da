"""mmjax: multimodal recommendation in JAX.

Extract item representations once (torch side, `mmjax.features`), then train and
evaluate recommenders in JAX, with controls that show whether content is used.
"""

__version__ = '0.1.0'
