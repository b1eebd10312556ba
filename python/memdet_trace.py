"""Per-step traces of a PyTorch training loop, for `memdet diff`.

Two lines in a training loop:

    import memdet_trace
    trace = memdet_trace.Trace(model)          # before the loop
    ...
        optimizer.step()
        trace.step(loss)                       # at the end of every step

Each call to step() writes one line to `memdet-trace.jsonl`: the step number,
the loss as repr() prints it, and a digest of every parameter and buffer in
module order (with grads=True, of every gradient too). The header holds the
digests before the first step. `memdet diff A B` reads two
traces and names the first step whose loss or any digest differs, and the
first tensor, in module order, that differs at that step.

With ops=range(FIRST, STOP), every operator that runs during those steps is
recorded in call order through a TorchDispatchMode, backward operators
included: its name, the module it ran in, the digests of its inputs taken
before it ran, of its non-tensor arguments, of the random generator's state
for random operators, and of every output. `memdet diff` then names the
first operator whose inputs matched and whose output differed.

With save=range(FIRST, STOP), the parameters at the end of those steps, and
the outputs of the operators recorded in them, are also written as
safetensors files, so `memdet diff` can give element-level distances.

The digest is zlib.crc32 over a tensor's logical values in C order, plus its
dtype, shape and strides. bfloat16 tensors are hashed as int16. Buffers
(BatchNorm's running statistics) are digested with the parameters, in
state_dict order. With cache=True a parameter's digest is reused while its
storage and version stay the same, so frozen parameters are hashed once;
it is off by default because writes through .data or numpy do not change
a tensor's version, and a cached digest would hide them.

Cost, measured with bench/trace_cost.py on the embedding example's model
(one thread, 65 operators and 0.41 ms a step untraced): step digests make a
step 1.3 times as long; recording its operators, 15 times (about 90
microseconds an operator, most of it crc32 over inputs and outputs); saving
their outputs too, 70 times. Record and save only the steps that matter.

The files go to `path` when it is given, else to the directory in
MEMDET_RUN_DIR (set by memdet for each run), else to the current directory.
The trace holds no times, addresses or process ids, so two runs that
computed the same values write byte-identical traces.
"""

import json
import os
import struct
import zlib

import torch
from torch.utils._python_dispatch import TorchDispatchMode

FORMAT = 1
TRACE_NAME = "memdet-trace.jsonl"
TENSOR_DIR = "memdet-trace.tensors"

# Operators whose output is uninitialised memory, never compared.
_GARBAGE_OUTPUT = {
    "empty",
    "empty_like",
    "empty_strided",
    "new_empty",
    "new_empty_strided",
    "_empty_affine_quantized",
    "_empty_per_channel_affine_quantized",
}

# In-place operators that overwrite their first argument whole without
# reading it: CPU dropout runs empty_like and then bernoulli_, so the
# destination's old bytes are garbage.
_OVERWRITES_SELF = {
    "bernoulli_",
    "cauchy_",
    "copy_",
    "exponential_",
    "fill_",
    "geometric_",
    "log_normal_",
    "normal_",
    "random_",
    "uniform_",
    "zero_",
}

# Operators that draw from a random generator.
_RANDOM = {
    "bernoulli",
    "bernoulli_",
    "binomial",
    "cauchy_",
    "exponential_",
    "geometric_",
    "log_normal_",
    "multinomial",
    "native_dropout",
    "normal",
    "normal_",
    "poisson",
    "rand",
    "rand_like",
    "randint",
    "randint_like",
    "randn",
    "randn_like",
    "random_",
    "randperm",
    "rrelu_with_noise",
    "uniform_",
    "_fused_dropout",
    "_standard_gamma",
    "_sample_dirichlet",
}

# Bookkeeping operators: they carry no values and differ between runs.
_SKIPPED_NAMESPACES = {"profiler"}

_SAFETENSORS_DTYPES = {
    torch.float64: "F64",
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.int16: "I16",
    torch.int8: "I8",
    torch.uint8: "U8",
    torch.bool: "BOOL",
    torch.complex64: "C64",
}


def _dtype_name(dtype):
    return str(dtype).replace("torch.", "")


def _plain(tensor):
    """The tensor's logical values, contiguous on the CPU, as a numpy array."""
    tensor = tensor.detach()
    if tensor.is_conj():
        tensor = tensor.resolve_conj()
    if tensor.is_neg():
        tensor = tensor.resolve_neg()
    if tensor.device.type != "cpu":
        tensor = tensor.cpu()
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.view(torch.int16)
    return tensor.contiguous().numpy()


def digest(tensor):
    """crc32 of the values in C order, then of dtype, shape and strides."""
    if tensor.layout != torch.strided or tensor.is_quantized:
        text = "%s|%s|%s" % (tensor.layout, _dtype_name(tensor.dtype), list(tensor.shape))
        return "%08x" % zlib.crc32(text.encode())
    array = _plain(tensor)
    crc = zlib.crc32(array.reshape(-1).view("u1").data) if array.size else 0
    shape = "|%s|%s|%s" % (_dtype_name(tensor.dtype), list(tensor.shape), list(tensor.stride()))
    return "%08x" % zlib.crc32(shape.encode(), crc)


def write_safetensors(path, named_tensors):
    """Writes (name, tensor) pairs as one safetensors file, in the given order."""
    header, chunks, offset = {}, [], 0
    for name, tensor in named_tensors:
        dtype = _SAFETENSORS_DTYPES.get(tensor.dtype)
        if dtype is None or tensor.layout != torch.strided:
            continue
        data = _plain(tensor).tobytes()
        header[name] = {
            "dtype": dtype,
            "shape": list(tensor.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":"))
    text += " " * (-len(text) % 8)
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(text)))
        out.write(text.encode())
        for data in chunks:
            out.write(data)


def _walk(roots):
    """Every autograd node reachable from roots, each once."""
    seen, stack, order = set(), [node for node in roots if node is not None], []
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        order.append(node)
        for parent, _ in getattr(node, "next_functions", ()):
            if parent is not None:
                stack.append(parent)
    return order


def _grad_fns(value):
    """The autograd nodes of every tensor in a module's input or output."""
    if isinstance(value, torch.Tensor):
        return [value.grad_fn] if value.grad_fn is not None else []
    if isinstance(value, (list, tuple)):
        return [node for item in value for node in _grad_fns(item)]
    if isinstance(value, dict):
        return [node for item in value.values() for node in _grad_fns(item)]
    return []


class _Recorder(TorchDispatchMode):
    """Records every operator while active."""

    def __init__(self, trace):
        super().__init__()
        self.trace = trace

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        return self.trace._record(func, args, kwargs)


class Trace:
    """Writes a per-step trace of a model's training; see the module's text."""

    def __init__(
        self, model, path=None, grads=False, ops=None, save=None, first_step=0, cache=False
    ):
        directory = path if path is not None else os.environ.get("MEMDET_RUN_DIR", ".")
        os.makedirs(directory, exist_ok=True)
        self.directory = directory
        self.grads = grads
        self.ops = _steps(ops)
        self.save = _steps(save)
        self.current = first_step
        self.params = _state(model)
        self.cache = {} if cache else None
        self.file = open(os.path.join(directory, TRACE_NAME), "w")
        buffers = {id(b) for b in model.buffers()}
        self.buffers = buffers
        header = {
            "memdet_trace": FORMAT,
            "torch": torch.__version__,
            "grads": bool(grads),
            "ops": [min(self.ops), max(self.ops) + 1] if self.ops else None,
            "params": [
                {
                    "name": name,
                    "dtype": _dtype_name(p.dtype),
                    "shape": list(p.shape),
                    "kind": "buffer" if id(p) in buffers else "parameter",
                }
                for name, p in self.params
            ],
            # The state before the first step: runs that start apart are
            # told apart from runs that part in training.
            "initial": [self._cached_digest(name, p) for name, p in self.params],
        }
        self._write(header)

        self.call = 0
        self.mode = None
        self.module_stack = []
        self.node_module = {}
        self.param_module = {}
        self.hooks = []
        self.pending = []
        self.garbage = set()
        self.phase = "forward"
        for name, module in model.named_modules():
            for param_name, param in module.named_parameters(recurse=False):
                self.param_module[id(param)] = name
            self.hooks.append(module.register_forward_pre_hook(self._enter_module(name)))
            self.hooks.append(module.register_forward_hook(self._leave_module(name)))
        self._start_ops()

    # Steps.

    def step(self, loss=None):
        """Ends the current step: writes its line, then starts the next."""
        self._stop_ops()
        record = {"step": self.current}
        if loss is not None:
            value = loss.item() if isinstance(loss, torch.Tensor) else loss
            record["loss"] = repr(float(value))
        record["params"] = [self._cached_digest(name, p) for name, p in self.params]
        if self.grads:
            record["grads"] = [
                digest(p.grad) if p.grad is not None else None for _, p in self.params
            ]
        if self.current in self.save:
            name = "step-%06d.safetensors" % self.current
            self._save(name, [(n, p) for n, p in self.params])
            record["saved"] = name
        self._write(record)
        self.current += 1
        self._start_ops()

    def close(self):
        """Stops recording and removes the hooks; the file is complete."""
        self._stop_ops()
        for hook in self.hooks:
            hook.remove()
        self.hooks = []
        if not self.file.closed:
            self.file.close()

    def _cached_digest(self, name, param):
        """The digest, reused while a parameter's storage and version stay.

        Only with cache=True, and never for buffers: writes through .data,
        through numpy, and by kernels that update buffers in place
        (BatchNorm's running statistics) leave _version as it was.
        """
        if self.cache is None or id(param) in self.buffers:
            return digest(param)
        key = (param.data_ptr(), param._version, tuple(param.shape), tuple(param.stride()))
        cached = self.cache.get(name)
        if cached is not None and cached[0] == key:
            return cached[1]
        value = digest(param)
        self.cache[name] = (key, value)
        return value

    def _write(self, record):
        self.file.write(json.dumps(record, separators=(",", ":")) + "\n")
        self.file.flush()

    def _save(self, name, named_tensors):
        folder = os.path.join(self.directory, TENSOR_DIR)
        os.makedirs(folder, exist_ok=True)
        write_safetensors(os.path.join(folder, name), named_tensors)

    # Operators.

    def _start_ops(self):
        if self.current not in self.ops or self.mode is not None:
            return
        self.phase = "forward"
        self.node_module = {}
        self.original_backward = torch.autograd.backward
        torch.autograd.backward = self._backward
        self.mode = _Recorder(self)
        self.mode.__enter__()

    def _stop_ops(self):
        if self.mode is None:
            return
        self.mode.__exit__(None, None, None)
        self.mode = None
        torch.autograd.backward = self.original_backward
        self._flush_pending("")
        self.node_module = {}

    def _enter_module(self, name):
        def hook(module, inputs):
            if self.mode is None:
                return
            # What fed the module was made around it, by its parent.
            self._tag(_grad_fns(inputs), self._module_path())
            self.module_stack.append(name)

        return hook

    def _leave_module(self, name):
        def hook(module, inputs, output):
            if self.mode is None:
                return
            if self.module_stack and self.module_stack[-1] == name:
                self.module_stack.pop()
            self._tag(_grad_fns(output), name)

        return hook

    def _module_path(self):
        return self.module_stack[-1] if self.module_stack else None

    def _tag(self, roots, module):
        """Marks the untagged autograd nodes reachable from roots as module's."""
        stack = list(roots)
        while stack:
            node = stack.pop()
            if node is None or id(node) in self.node_module:
                continue
            self.node_module[id(node)] = (node, module)
            for parent, _ in getattr(node, "next_functions", ()):
                stack.append(parent)

    def _backward(self, tensors, *args, **kwargs):
        """torch.autograd.backward, with every node's operators attributed."""
        roots = _grad_fns(tensors)
        for node in _walk(roots):
            module = self.node_module.get(id(node), (None, None))[1]
            variable = getattr(node, "variable", None)
            if variable is not None:
                module = self.param_module.get(id(variable), module)
            node.register_hook(self._node_done(type(node).__name__, module))
        self.phase = "backward"
        try:
            return self.original_backward(tensors, *args, **kwargs)
        finally:
            self._flush_pending(None)
            self.phase = "update"

    def _node_done(self, node_name, module):
        def hook(grad_inputs, grad_outputs):
            for record in self.pending:
                record["module"] = module
                record["node"] = node_name
            self._flush_records()

        return hook

    def _flush_pending(self, module):
        for record in self.pending:
            record.setdefault("module", module)
        self._flush_records()

    def _flush_records(self):
        for record in self.pending:
            self._write(record)
        self.pending = []

    def _record(self, func, args, kwargs):
        packet = func.overloadpacket.__name__
        namespace = func.namespace if hasattr(func, "namespace") else func._schema.name.split("::")[0]
        if namespace in _SKIPPED_NAMESPACES:
            return func(*args, **kwargs)

        schema = func._schema
        inputs, texts, read_storages, whole_writes, written = [], [], set(), set(), []
        named = list(zip(schema.arguments, args)) + [
            (argument, kwargs[argument.name])
            for argument in schema.arguments
            if argument.name in kwargs
        ]
        for position, (argument, value) in enumerate(named):
            overwritten = (position == 0 and packet in _OVERWRITES_SELF) or (
                argument.kwarg_only
                and argument.alias_info is not None
                and argument.alias_info.is_write
            )
            tensors = _tensors_in(value)
            if tensors is None:
                # The dispatcher drops arguments left at their default.
                texts.append("%s=%s" % (argument.name, _short(value)))
                continue
            for index, tensor in enumerate(tensors):
                label = argument.name if len(tensors) == 1 and isinstance(value, torch.Tensor) else (
                    "%s.%d" % (argument.name, index)
                )
                if tensor is None:
                    inputs.append([label, None, None])
                    continue
                storage = _storage_key(tensor)
                read_storages.add(storage)
                if overwritten:
                    whole_writes.add(storage)
                # Torch 1.13's schemas do not mark every argument a kernel
                # writes (native_batch_norm's running statistics), so the
                # model's buffers are digested again after every operator.
                marked = argument.alias_info is not None and argument.alias_info.is_write
                if marked or id(tensor) in self.buffers:
                    written.append((label, tensor))
                unread = overwritten or storage in self.garbage
                inputs.append([label, None if unread else digest(tensor), list(tensor.shape)])

        rng = None
        if packet in _RANDOM:
            rng = self._rng_digest(kwargs.get("generator"), args)

        outputs = func(*args, **kwargs)

        produced, kept = [], []
        for index, tensor in enumerate(_tensors_in(outputs) or []):
            if tensor is None:
                continue
            if self._garbage_output(packet, tensor, read_storages, whole_writes):
                produced.append(["out%d" % index, None, list(tensor.shape)])
            else:
                produced.append(["out%d" % index, digest(tensor), list(tensor.shape)])
                kept.append(("out%d" % index, tensor))
        # Arguments an operator writes but does not return, as
        # native_batch_norm updates its running statistics.
        returned = {id(t) for t in (_tensors_in(outputs) or []) if t is not None}
        for label, tensor in written:
            if id(tensor) in returned:
                continue
            if self._garbage_output(packet, tensor, read_storages, whole_writes):
                produced.append([label + " (written)", None, list(tensor.shape)])
            else:
                produced.append([label + " (written)", digest(tensor), list(tensor.shape)])
                kept.append((label + " (written)", tensor))

        record = {
            "op": self.call,
            "step": self.current,
            "name": "%s.%s.%s" % (namespace, packet, func._overloadname),
            "phase": self.phase,
            "args": ", ".join(texts),
            "args_digest": "%08x" % zlib.crc32(repr(texts).encode()),
            "in": inputs,
            "out": produced,
        }
        if rng is not None:
            record["rng"] = rng
        if self.current in self.save and kept:
            name = "op-%06d.safetensors" % self.call
            self._save(name, kept)
            record["saved"] = name
        self.call += 1
        if self.phase == "backward":
            self.pending.append(record)
        else:
            record["module"] = self._module_path()
            self._write(record)
        return outputs

    def _garbage_output(self, packet, tensor, read_storages, whole_writes):
        """Whether an output holds uninitialised memory, and so is not compared.

        The storages that empty* made stay garbage through views and partial
        writes until an operator overwrites them whole. A fresh output at an
        address a freed garbage storage had is not garbage.
        """
        storage = _storage_key(tensor)
        if packet in _GARBAGE_OUTPUT:
            self.garbage.add(storage)
            return True
        if storage not in self.garbage:
            return False
        if storage in whole_writes or storage not in read_storages:
            self.garbage.discard(storage)
            return False
        return True

    def _rng_digest(self, generator, args):
        if generator is None:
            device = next(
                (t.device for t in (_tensors_in(args) or []) if t is not None),
                torch.device("cpu"),
            )
            if device.type == "cuda":
                state = torch.cuda.get_rng_state(device)
            else:
                state = torch.get_rng_state()
        else:
            state = generator.get_state()
        return "%08x" % zlib.crc32(state.numpy().tobytes())


def _storage_key(tensor):
    """Where a tensor's storage starts, which its views share."""
    if tensor.layout != torch.strided:
        return (tensor.device.type, id(tensor))
    return (tensor.device.type, tensor.data_ptr() - tensor.storage_offset() * tensor.element_size())


def _steps(steps):
    """A set of step numbers from a range or any iterable of them."""
    return set(steps) if steps is not None else set()


def _state(model):
    """Parameters and buffers in module order, as state_dict orders them.

    Buffers count: a BatchNorm's running statistics are state that a step
    changes in place, and a run that drifts there drifts in its outputs.
    """
    state, seen = [], set()
    for prefix, module in model.named_modules():
        tensors = list(module.named_parameters(recurse=False)) + list(
            module.named_buffers(recurse=False)
        )
        for name, tensor in tensors:
            if tensor is None or id(tensor) in seen:
                continue
            seen.add(id(tensor))
            state.append((prefix + "." + name if prefix else name, tensor))
    return state


def _tensors_in(value):
    """The tensors in an argument or result, or None when it holds none."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)) and any(isinstance(v, torch.Tensor) for v in value):
        return [v if isinstance(v, torch.Tensor) else None for v in value]
    return None


def _short(value):
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
