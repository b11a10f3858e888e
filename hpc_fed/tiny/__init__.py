"""The offline tiny LLaVA-style model: built locally (model), pre-fitted on easy-VQA's reserved
slice (prefit), and built or rebuilt in model.tiny.dir when a run asks for model.path=tiny
(build). It sits above model, data and eval, whose code it uses to pre-fit and score itself."""
