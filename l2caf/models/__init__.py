"""The models the methods explain: a slim network in its own graph and session (slim.Model)
or a Keras model run through tf.functions (keras.KerasModel), both with a filter at one
layer; what every model offers the methods and metrics (base.ExplainableModel), safe loading
of saved Keras models, slim checkpoints, and a model from a run's config (sources).

    base                 the ExplainableModel Protocol, Prediction, prepare_images
    slim                 Model: tf-slim networks (l2caf.networks), graph, session, restore
    keras                KerasModel: any functional or Sequential Keras model
    keras_graph          the layer graph of a Keras model, walked by l2caf itself
    keras_loading        saved Keras models, refused when they carry code unless trusted
    keras_applications   keras.applications networks by name
    checkpoints          find, check, restore, save and download slim checkpoints
    sources              the model (and method) a run's config names, and its layers
"""
