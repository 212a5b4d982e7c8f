"""The benchmark paper's variational classifiers (hqexp.models.variational_benchmark): each circuit
against PennyLane's own circuit of the paper, the paper's stopping rule, and the models through
``hqexp train`` (the fitted path: loss curve, counted circuits, the paper's hyperparameters)."""

from __future__ import annotations

import math

import numpy as np
import pennylane as qml
import pytest
import torch
from helpers import artifacts, hqexp_here, runs

from hqexp.models import variational_benchmark as vb
from hqexp.models.paper_training import converged
from hqexp.quantum import gates

RNG = np.random.default_rng(0)
ATOL = 1e-5  # the training states are complex64


def _params(model, X):
    inputs = model._prepare(X, fit=True)
    return inputs, model._init_params(X.shape[1], torch.Generator().manual_seed(0))


def _forward(model, params, inputs):
    with torch.no_grad():
        return model._forward(params, inputs).double().numpy()


@pytest.mark.parametrize("imprimitive, op", [("cnot", qml.CNOT), ("cz", qml.CZ)])
def test_strongly_entangling_layers_equal_pennylanes(imprimitive, op):
    n, w = 4, torch.tensor(RNG.uniform(0, 2 * np.pi, (5, 4, 3)))
    dev = qml.device("default.qubit", wires=n)

    @qml.qnode(dev)
    def circuit():
        qml.StronglyEntanglingLayers(w.numpy(), wires=range(n), imprimitive=op)
        return qml.state()

    psi = gates.strongly_entangling(gates.zero_state(1, n), n, w, imprimitive)
    np.testing.assert_allclose(psi.numpy()[0], circuit(), atol=1e-12)


def test_dressed_circuit_equals_pennylanes():
    X = RNG.uniform(-1, 1, (5, 4))
    m = vb.DressedQuantumCircuitClassifier(n_layers=2)
    x, p = _params(m, X)
    dev = qml.device("default.qubit", wires=4)

    @qml.qnode(dev)
    def circuit(a):
        for i in range(4):
            qml.Hadamard(i)
            qml.RY(a[i], wires=i)
        for layer in range(2):
            for i in range(4):
                qml.RY(p["circuit"][layer, i].item(), wires=i)
            for i in range(4):  # the paper's CNOT ring
                qml.CNOT(wires=[i, (i + 1) % 4])
        return [qml.expval(qml.PauliZ(i)) for i in range(4)]

    with torch.no_grad():
        angles = (torch.tanh(x @ p["input"].T) * math.pi / 2).numpy()
    want = np.array([circuit(a) for a in angles]) @ p["output"].detach().numpy().T
    np.testing.assert_allclose(_forward(m, p, x), want, atol=ATOL)


def test_iqp_variational_equals_pennylanes():
    X = RNG.uniform(-1, 1, (5, 3))
    m = vb.IQPVariationalClassifier(n_layers=3, repeats=2)
    x, p = _params(m, X)
    dev = qml.device("default.qubit", wires=3)

    @qml.qnode(dev)
    def circuit(a):
        qml.IQPEmbedding(a, wires=range(3), n_repeats=2)
        qml.StronglyEntanglingLayers(p["weights"].detach().numpy(), wires=range(3), imprimitive=qml.CZ)
        return qml.expval(qml.PauliZ(0) @ qml.PauliZ(1))

    want = [circuit(a) for a in m.scaler_.transform(X)]
    np.testing.assert_allclose(_forward(m, p, x), want, atol=ATOL)


def test_circuit_centric_equals_pennylanes_with_two_copies():
    X = RNG.uniform(-1, 1, (5, 3))
    m = vb.CircuitCentricClassifier(n_layers=2, n_input_copies=2)
    x, p = _params(m, X)
    dev = qml.device("default.qubit", wires=4)

    @qml.qnode(dev)
    def circuit(a):
        qml.AmplitudeEmbedding(np.kron(a, a), wires=range(4))
        qml.StronglyEntanglingLayers(p["weights"].detach().numpy(), wires=range(4))
        return qml.expval(qml.PauliZ(0))

    padded = np.c_[X, np.full(5, 0.25)]  # the paper pads with 1/2^k, then normalises
    want = [circuit(a / np.linalg.norm(a)) + 0.01 for a in padded]
    np.testing.assert_allclose(_forward(m, p, x), want, atol=ATOL)


def test_separable_variational_equals_pennylanes():
    X = RNG.uniform(-1, 1, (5, 3))
    m = vb.SeparableVariationalClassifier(encoding_layers=2)
    x, p = _params(m, X)
    W = p["weights"].detach().numpy()
    dev = qml.device("default.qubit", wires=1)

    @qml.qnode(dev)
    def qubit(w, a):
        for layer in range(2):
            qml.Rot(*w[layer], wires=0)
            qml.RY(a, wires=0)
        qml.Rot(*w[2], wires=0)
        return qml.expval(qml.PauliZ(0))

    want = [np.mean([qubit(W[i], a[i]) for i in range(3)]) for a in m.scaler_.transform(X)]
    np.testing.assert_allclose(_forward(m, p, x), want, atol=ATOL)


def test_tree_tensor_equals_pennylanes():
    X = RNG.uniform(-1, 1, (5, 8))  # 8 features: 3 amplitude qubits -> a tree on 4
    m = vb.TreeTensorClassifier()
    x, p = _params(m, X)
    assert m.n_qubits_ == 4
    W = p["weights"].detach().numpy()
    dev = qml.device("default.qubit", wires=4)

    @qml.qnode(dev)
    def circuit(a):
        qml.AmplitudeEmbedding(a, normalize=True, wires=range(4))
        count = 0
        for layer in range(2):
            for q in range(0, 4, 2**layer):
                qml.RY(W[count], wires=q)
                count += 1
            for i in range(0, 4, 2 ** (layer + 1)):
                qml.CNOT(wires=[i + 2**layer, i])
        qml.RY(W[count], wires=0)
        return qml.expval(qml.PauliZ(0))

    padded = np.c_[X, np.full((5, 8), 1 / 16)]
    want = [circuit(a) + p["bias"].item() for a in padded]
    np.testing.assert_allclose(_forward(m, p, x), want, atol=ATOL)


def test_data_reuploading_equals_pennylanes():
    X = RNG.uniform(-1, 1, (5, 7))  # 7 features: padded to 9, three qubits
    m = vb.DataReuploadingClassifier(n_layers=3, observable_type="full")
    x, p = _params(m, X)
    assert m.n_qubits_ == 3
    th, om = p["thetas"].detach().numpy(), p["omegas"].detach().numpy()
    dev = qml.device("default.qubit", wires=3)

    @qml.qnode(dev)
    def circuit(a):  # the paper's circuit, gate by gate
        for layer in range(3):
            for i in range(3):
                qml.Rot(*(a[3 * i : 3 * i + 3] * om[layer, 3 * i : 3 * i + 3]), wires=i)
                qml.Rot(*th[i, layer], wires=i)
            pairs = [(0, 1)] if layer % 2 == 0 else [(1, 2)]  # CZ "double", then "double_odd"
            for c, t in pairs:
                qml.CZ(wires=[c, t])
        for i in range(3):
            qml.Rot(*(a[3 * i : 3 * i + 3] * om[3, 3 * i : 3 * i + 3] + th[i, 3]), wires=i)
        return [qml.expval(qml.PauliZ(i)) for i in range(3)]

    want = [circuit(a) for a in x.numpy()]
    np.testing.assert_allclose(_forward(m, p, x), want, atol=ATOL)


def test_the_papers_stopping_rule():
    # the rule: |mean(last 200) - mean(200 before)| <= std(last 200) / sqrt(200) / 2
    flat = [1.0 + 0.01 * (-1) ** i for i in range(402)]  # equal means: flat (checked from step 401 on)
    falling = list(np.linspace(2.0, 1.0, 402) + 0.01 * np.random.default_rng(0).standard_normal(402))
    assert converged(flat, 200) and not converged(falling, 200)
    assert not converged(flat[:401], 200)  # the paper checks only after step 2 x interval


@pytest.mark.parametrize(
    "model",
    [
        "dressed_quantum_circuit",
        "circuit_centric",
        "iqp_variational",
        "separable_variational",
        "tree_tensor",
        "data_reuploading",
    ],
)
def test_every_variational_model_fits_through_hqexp_train(tmp_path, model):
    args = ["dataset=qml_benchmark", "dataset.n_features=4", f"model={model}", "model.max_steps=30"]
    hqexp_here(["train", *args], tmp_path)
    (run,) = runs(tmp_path)
    m = run.data.metrics
    assert run.info.status == "FINISHED" and m["train/steps"] == 30 and m["train/converged"] == 0
    assert "plots/loss.png" in artifacts(tmp_path, run.info.run_id)
    steps = [x.step for x in __import__("helpers").client(tmp_path).get_metric_history(run.info.run_id, "train/loss")]
    assert steps == list(range(30))
    # a device's bill for the fit: every step's batch, each sample's circuit plus 2 shifted ones per angle
    assert m["qpu/circuits_fit"] == 30 * 32 * (1 + 2 * m["params/quantum"])


def test_best_hyperparams_set_the_training_keys(tmp_path):
    from pathlib import Path

    root = tmp_path / "results" / "linearly_separable" / "TreeTensorClassifier"
    root.mkdir(parents=True)
    (root / "TreeTensorClassifier_linearly_separable_4d_GridSearchCV-best-hyperparams.csv").write_text(
        "hyperparameter,best_value\nbatch_size,16\nlearning_rate,0.1\nmax_vmap,1\n"
    )
    args = ["dataset=qml_benchmark", "dataset.n_features=4", "model=tree_tensor", "model.max_steps=5"]
    hqexp_here(["train", *args, f"best_hyperparams={Path(tmp_path) / 'results'}"], tmp_path)
    (run,) = runs(tmp_path)
    assert (run.data.params["model.batch_size"], run.data.params["model.learning_rate"]) == ("16", "0.1")
