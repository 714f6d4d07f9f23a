"""Source models: the files frameworks save (Keras, TensorFlow SavedModel, torch.export, TorchScript), exported once
into the hub form (ONNX) that the rest of edgebench takes. ``registry.source_of`` tells a path's kind,
``hub.to_hub`` exports it into the artifact cache; docs/sources.md has the table. Frameworks are imported only
by an export."""
