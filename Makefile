# hqexp — `make help` lists the targets. `make install` and `make test` are all a
# fresh clone needs; every target installs first when the environment is missing.
SHELL := /bin/bash
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# torch first, so the project's `torch>=2.3` then installs nothing more. On a Linux
# GPU machine PyPI's torch==2.13.0 is the CUDA build; where a local CPU wheel is
# configured (pip find-links) or TORCH_INDEX points at a CPU index, the CPU build.
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
EXTRAS ?= dev
PORT ?= 5000
HOST ?= 127.0.0.1
FLOWER_PORT ?= 9091
SUPERLINK ?= 127.0.0.1:9091
K ?= 0
# Flower over TLS (the default): the CA, the SuperLink's certificate and the SuperNodes' keys
CERTS ?= $(CURDIR)/certs
HOSTS ?=
NODES ?= 2
INSECURE ?= 0
NODE_PORT ?= $(shell echo $$((9094 + $(K))))
# A team tracking server's stores: SERVER_STORE may be postgresql://user:pw@host/db too.
SERVER_DIR ?= $(CURDIR)/outputs/server
SERVER_STORE ?= sqlite:///$(SERVER_DIR)/mlflow.db
# AUTH=1: MLflow's basic-auth app (users, per-experiment permissions); a non-loopback HOST needs it
# (or OPEN=1 on a network you trust). What a logged-in user may do with others' experiments:
AUTH ?= 0
OPEN ?= 0
AUTH_DEFAULT_PERMISSION ?= READ
ARGS ?=
PYTEST_ARGS ?= -n 2

.DEFAULT_GOAL := help
.PHONY: help install lint format test test-all train sweep qml-benchmark hqnn-study generations sfl-study privacy-study noise-study noise-bp tune diagnose ui server superlink supernode certs register bench clean

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}'

install: $(STAMP) ## create .venv and install hqexp (CPU torch here; EXTRAS=dev,gpu for lightning.gpu)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install -q -e ".[$(EXTRAS)]"
	touch $(STAMP)

lint: install ## ruff: lint and format check (what CI runs before the tests)
	$(BIN)/ruff check hqexp tests scripts
	$(BIN)/ruff format --check hqexp tests scripts

format: install ## ruff: fix what can be fixed and format the code
	$(BIN)/ruff check --fix hqexp tests scripts
	$(BIN)/ruff format hqexp tests scripts

test: install ## run the test suite (fast; no slow or GPU tests)
	$(BIN)/python -m pytest $(PYTEST_ARGS) -m "not slow and not gpu"

test-all: install ## every test, slow ones too (GPU tests skip without a GPU)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

train: install ## train the default hybrid (ARGS="model=mlp_classifier dataset=wine" to change)
	$(BIN)/hqexp train $(ARGS)

sweep: install ## hybrid vs classical twin x 3 seeds, 2 jobs in parallel (ARGS for more overrides)
	$(BIN)/hqexp sweep sweep=hybrid_vs_classical hydra/launcher=joblib hydra.launcher.n_jobs=2 $(ARGS)

qml-benchmark: install ## Bowles et al. 2024 with its best hyperparameters: QMLB_RESULTS=<qml-benchmarks clone>/paper/results
	@test -n "$(QMLB_RESULTS)" || { echo "make qml-benchmark: set QMLB_RESULTS=<dir>/paper/results of a clone of https://github.com/XanaduAI/qml-benchmarks"; exit 2; }
	$(BIN)/hqexp sweep sweep=qml_benchmark best_hyperparams=$(QMLB_RESULTS) hydra/launcher=joblib hydra.launcher.n_jobs=2 $(ARGS)

hqnn-study: install ## HQNN regressor vs classical twin: 54 runs, study table on the parent (~15 min, 2 cores)
	$(BIN)/hqexp sweep sweep=hqnn_study hydra/launcher=joblib hydra.launcher.n_jobs=2 $(ARGS)

generations: install ## G-0..G-10 (+ classical twins) on breast_cancer and binary iris: one summary table
	$(BIN)/hqexp sweep sweep=generations hydra/launcher=joblib hydra.launcher.n_jobs=2 $(ARGS)

sfl-study: install ## {none, fl, sl, sflv1, sflv2} x {quantum, classical} server head x 3 seeds: study table
	$(BIN)/hqexp sweep sweep=sfl_study hydra/launcher=joblib hydra.launcher.n_jobs=2 $(ARGS)

privacy-study: install ## privacy-utility sweep (defences x server head x 3 seeds): ARGS="dataset.root=DIR"
	$(BIN)/hqexp sweep sweep=privacy_study hydra/launcher=joblib hydra.launcher.n_jobs=2 $(ARGS)

noise-study: install ## hybrid trained noiseless vs noise-aware (FakeManilaV2), tested exact / depolarizing / on the device, + twin, 3 seeds
	$(BIN)/hqexp sweep sweep=noise_study hydra/launcher=joblib hydra.launcher.n_jobs=2 $(ARGS)

noise-bp: install ## noise-induced barren plateaus: mean |dC/dθ| against depth at p = 0.001, 0.01, 0.05, 4-8 qubits
	$(BIN)/hqexp diagnose noise_bp $(ARGS)

tune: install ## Optuna search over optim.lr / weight_decay, scored on validation (ARGS="hydra.sweeper.n_trials=50")
	$(BIN)/hqexp sweep sweep=tune $(ARGS)

diagnose: install ## barren-plateau / expressibility scan (ARGS="ansatz.template=strongly_entangling")
	$(BIN)/hqexp diagnose $(ARGS)

ui: install ## open the MLflow UI on the default store (http://127.0.0.1:$(PORT))
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/outputs/mlflow.db --host 127.0.0.1 --port $(PORT)

server: install ## a team's MLflow tracking server: AUTH=1 HOST=0.0.0.0 (logins; admin password from MLFLOW_AUTH_ADMIN_PASSWORD)
	$(BIN)/python -m hqexp.tracking.server --dir $(SERVER_DIR) --store $(SERVER_STORE) --host $(HOST) --port $(PORT) \
		$(if $(filter 1,$(AUTH)),--auth) $(if $(filter 1,$(OPEN)),--open-network) --default-permission $(AUTH_DEFAULT_PERMISSION)

superlink: install ## a Flower SuperLink over TLS, admitting registered SuperNodes only (certs from make certs; INSECURE=1: plain HTTP)
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/flower-superlink $(if $(filter 1,$(INSECURE)),--insecure,--ssl-ca-certfile \
		$(CERTS)/ca.crt --ssl-certfile $(CERTS)/server.pem --ssl-keyfile $(CERTS)/server.key --enable-supernode-auth) \
		--host $(HOST) --port $(FLOWER_PORT) --disable-runtime-dependency-installation

supernode: install ## a Flower SuperNode for client K (K=0 SUPERLINK=host:9091; its key certs/supernode_K; INSECURE=1: plain HTTP)
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/flower-supernode $(if $(filter 1,$(INSECURE)),--insecure,--root-certificates \
		$(CERTS)/ca.crt --auth-supernode-private-key $(CERTS)/supernode_$(K)) --superlink $(SUPERLINK) \
		--port $(NODE_PORT) --node-config "partition-id=$(K)"

certs: install ## a local test CA, the SuperLink's certificate (HOSTS="server.lan 10.0.0.5") and NODES SuperNode key pairs in certs/
	$(BIN)/python scripts/flower_certs.py --out $(CERTS) $(foreach h,$(HOSTS),--host $(h)) --supernodes $(NODES)

register: install ## admit SuperNode K to the SuperLink: registers certs/supernode_K.pub (SUPERLINK=host:9091)
	mkdir -p $(CERTS)/flwr_home
	printf '[superlink]\ndefault = "hqexp"\n\n[superlink.hqexp]\naddress = "%s"\nroot-certificates = "%s"\n' \
		"$(SUPERLINK)" "$(abspath $(CERTS))/ca.crt" > $(CERTS)/flwr_home/config.toml
	FLWR_HOME=$(CERTS)/flwr_home $(BIN)/flwr supernode register $(CERTS)/supernode_$(K).pub hqexp

bench: install ## time every available backend against torch (ARGS="grid=[[8,3,64]]")
	$(BIN)/hqexp bench backends $(ARGS)

clean: ## remove Hydra run dirs, the MLflow store and artifacts, caches (keeps .venv)
	rm -rf outputs/runs outputs/multirun outputs/mlflow.db outputs/mlartifacts outputs/cache .pytest_cache
	find . -name __pycache__ -type d -prune -not -path "./$(VENV)/*" -exec rm -rf {} +
