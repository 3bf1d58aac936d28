"""Self-tests of the brute-force reference (tests/reference.py) on hand-solvable cases."""
import numpy as np
import pytest
import scipy.linalg as sla
from scipy.sparse.linalg import expm_multiply

from reference import (
    HBAR,
    KB,
    Geometry,
    bath_spectral_function,
    build_hamiltonian,
    ensemble_density,
    evolve,
    full_state,
    gibbs_ensemble,
    gibbs_rho,
    gibbs_spectrum,
    hamiltonian,
    heisenberg_fm,
    initial_ensemble,
    lindblad_evolve,
    lindblad_superoperator,
    log_negativity,
    negativity_blocks,
    observables,
    observables_from_rho,
    product_state,
    qfi_bound,
    qfi_exact,
    reduced_electron_spin,
    reduced_fm,
    spin_basis_state,
    steady_state,
    ule_jump_operators,
)

K = (np.pi / 6, np.pi / 2)


def test_import_is_independent():
    """The reference must not import the project package."""
    import ast

    import reference

    with open(reference.__file__) as f:
        tree = ast.parse(f.read())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add((node.module or "").split(".")[0])
    assert names <= {"__future__", "dataclasses", "typing", "numpy", "scipy"}, names


def test_basis_ordering():
    # electron up at site 1 with spins (up, down) on L=3, N=2
    v = product_state(3, 1.0, 0.0, 100.0, +1, [1, -1])  # dk huge: localized at x0
    idx = np.argmax(np.abs(v))
    assert idx == (1 * 2 + 0) * 4 + 0b01
    assert np.isclose(np.abs(v[idx]), 1.0)


def test_single_site_exchange_oscillation():
    """L=1, one spin: -J_sd s.S; triplet E=-J_sd, singlet E=+3 J_sd -> P_flip = sin^2(2 J_sd t/hbar)."""
    j_sd = 0.5
    H = build_hamiltonian(1, 0, 1, 0, 0, j_sd=j_sd)
    ev = np.linalg.eigvalsh(H.toarray())
    assert np.allclose(ev, [-j_sd, -j_sd, -j_sd, 3 * j_sd])
    psi0 = product_state(1, 0, 0, 0.2, -1, [1])  # |e down, S up>
    t = np.linspace(0, 5, 21)
    psis = evolve(H, psi0, t)
    flipped = full_state(np.ones(1), +1, spin_basis_state([-1]))  # |e up, S down>
    P = np.abs(psis @ flipped.conj()) ** 2
    assert np.allclose(P, np.sin(2 * j_sd * t / HBAR) ** 2, atol=1e-12)
    # and <S^z> of the localized spin = cos(4 J_sd t / hbar)
    g = Geometry(1, 0, 1, 0, 0)
    for n in (3, 11):
        obs = observables([psis[n]], [1.0], H, g, K)
        assert np.isclose(obs["spin_expectation"][0, 2], np.cos(4 * j_sd * t[n] / HBAR), atol=1e-12)
        assert np.isclose(obs["electron_spin"][2], -np.cos(4 * j_sd * t[n] / HBAR), atol=1e-12)
        assert np.isclose(obs["sz_total"], 0.0, atol=1e-12)
        assert np.isclose(obs["energy"], j_sd, atol=1e-12)  # <s.S> = <sz Sz> = -1 for |dn,up>


def test_free_packet():
    L, x0, k, dk = 120, 30.0, np.pi / 2, 0.2
    H = build_hamiltonian(L, 0, 0, 0, 0)  # no localized spins
    assert H.shape == (2 * L, 2 * L)
    psi0 = product_state(L, x0, k, dk, +1, [])
    t = np.array([0.0, 2.0, 4.0, 6.0])
    psis = evolve(H, psi0, t)
    x = np.arange(L)
    for n, tt in enumerate(t):
        dens = np.sum(np.abs(psis[n].reshape(L, 2)) ** 2, axis=1)
        assert np.isclose(dens.sum(), 1.0, atol=1e-12)
        com = dens @ x
        # velocity operator (2 gamma/hbar) sin(p) commutes with H: <x> moves exactly linearly
        # with speed 2 gamma sin(k) exp(-dk^2/8)/hbar (Gaussian momentum spread dk/2)
        assert np.isclose(com, x0 + 2 * np.sin(k) * np.exp(-dk**2 / 8) * tt / HBAR, atol=1e-8)
        assert np.isclose(com, x0 + 2 * np.sin(k) * tt / HBAR, atol=0.1)  # ~ the paper's 2 gamma a/hbar
    # a free electron's spin is conserved
    assert np.allclose(np.abs(psis[-1].reshape(L, 2)[:, 1]), 0.0)


def test_hamiltonian_structure():
    g = Geometry(8, 1, 2, 1, 2)
    H = hamiltonian(g, j_sd=0.5, j=0.1, jz_ratio=1.3)
    A = H.toarray()
    assert A.shape == (g.dim, g.dim)
    assert np.abs(A - A.conj().T).max() == 0.0
    # S^z_tot (Pauli: electron + localized) commutes with H
    N = g.N
    sz_e = np.kron(np.kron(np.eye(g.L), np.diag([1, -1])), np.eye(2**N))
    sz_loc = np.zeros(2**N)
    for i in range(N):
        sz_loc += 1 - 2 * ((np.arange(2**N) >> (N - 1 - i)) & 1)
    Sz = sz_e + np.kron(np.eye(2 * g.L), np.diag(sz_loc))
    assert np.abs(A @ Sz - Sz @ A).max() < 1e-14
    # Heisenberg part: all-up in a 2-spin layer has energy -J_z (one bond)
    Hfm = heisenberg_fm(Geometry(4, 0, 2, 0, 0), 0.1, 1.3)
    assert np.isclose(Hfm[0, 0].real, -0.13)
    # layers do not couple: for p=[0,1], a=[2,3] no bond (1,2)
    assert g.bonds == [(0, 1), (2, 3)]
    assert g.sites == [1, 2, 4, 5]


def test_t0_observables_trivial():
    g = Geometry(30, 8, 2, 2, 2)
    H = hamiltonian(g)
    psis, ws = initial_ensemble(g, x0=3.0)
    obs = observables(psis, ws, H, g, K)
    assert obs["norm"] == pytest.approx(1.0, abs=1e-13)
    for key in ("entropy_p", "entropy_a", "entropy_pa", "mutual_information", "log_negativity"):
        assert abs(obs[key]) < 1e-12, key
    assert np.allclose(obs["magnon_probability"], [1, 0, 0, 0, 0])
    assert obs["w_state_probability"] == pytest.approx(0.0, abs=1e-14)
    assert np.allclose(obs["electron_spin"], 0.0)
    assert np.allclose(obs["spin_expectation"], [[0, 0, 1]] * 2 + [[0, 0, -1]] * 2)
    assert obs["sz_total"] == pytest.approx(0.0, abs=1e-14)
    assert np.allclose(obs["qfi_bound"], 0.0) and np.allclose(obs["qfi_exact"], 0.0)


def test_evolved_invariants_and_ensemble():
    g = Geometry(24, 6, 2, 2, 2)
    H = hamiltonian(g)
    psis, ws = initial_ensemble(g, x0=3.0)
    t = [0.0, 5.0, 12.0]
    tracks = [evolve(H, p, t) for p in psis]
    obs0 = observables(psis, ws, H, g, K)
    for n in range(len(t)):
        members = [tr[n] for tr in tracks]
        rho = reduced_fm(members, ws, g.L, g.N)
        assert np.abs(rho - rho.conj().T).max() < 1e-14
        assert np.isclose(np.trace(rho).real, 1.0, atol=1e-12)
        assert np.linalg.eigvalsh(rho).min() > -1e-13
        obs = observables(members, ws, H, g, K)
        assert obs["energy"] == pytest.approx(obs0["energy"], abs=1e-11)
        assert obs["sz_total"] == pytest.approx(0.0, abs=1e-11)
        assert obs["magnon_probability"].sum() == pytest.approx(1.0, abs=1e-12)
        rho_e = reduced_electron_spin(members, ws, g.L, g.N)
        assert np.isclose(np.trace(rho_e).real, 1.0)
        # ln sum of imbalance-block trace norms equals the log negativity
        blocks = negativity_blocks(rho, g)
        assert np.log(sum(blocks.values())) == pytest.approx(obs["log_negativity"], abs=1e-12)
        # observables_from_rho agrees with the ensemble version
        o2 = observables_from_rho(rho, g, K, rho_e)
        for key in o2:
            assert np.allclose(o2[key], obs[key], atol=1e-12), key
    # something happened by t = 12 fs: FM_p spins moved, the electron got polarized
    assert obs["entropy_p"] > 1e-4
    assert abs(obs["electron_spin"][2]) > 1e-3
    # QFI bound >= exact for the mixed state
    assert np.all(obs["qfi_bound"] >= obs["qfi_exact"] - 1e-12)


def _two_spin_geometry():
    return Geometry(2, 0, 1, 0, 1)  # one p spin on site 0, one a spin on site 1


def test_negativity_bell_and_product():
    g = _two_spin_geometry()
    bell = (spin_basis_state([1, -1]) + spin_basis_state([-1, 1])) / np.sqrt(2)
    rho = np.outer(bell, bell.conj())
    assert log_negativity(rho, g) == pytest.approx(np.log(2), abs=1e-13)
    obs = observables_from_rho(rho, g, K)
    assert obs["entropy_pa"] == pytest.approx(0.0, abs=1e-12)
    assert obs["entropy_p"] == pytest.approx(np.log(2), abs=1e-12)
    assert obs["mutual_information"] == pytest.approx(2 * np.log(2), abs=1e-12)
    assert obs["w_state_probability"] == pytest.approx(0.0, abs=1e-14)  # W is the symmetric (triplet) one
    assert np.allclose(obs["magnon_probability"], [0.5, 0, 0.5])
    tri = (spin_basis_state([-1, -1]) + spin_basis_state([1, 1])) / np.sqrt(2)
    assert observables_from_rho(np.outer(tri, tri.conj()), g, K)["w_state_probability"] == pytest.approx(1.0)
    # product of two arbitrary single-spin pure states
    a = np.array([0.6, 0.8j])
    b = np.array([np.cos(0.3), np.exp(0.7j) * np.sin(0.3)])
    v = np.kron(a, b)
    assert log_negativity(np.outer(v, v.conj()), g) == pytest.approx(0.0, abs=1e-13)
    # Werner state: separable for p <= 1/3, E_N = ln((1+3p)/2) above
    for p in (0.2, 0.6, 1.0):
        rho = p * np.outer(bell, bell.conj()) + (1 - p) * np.eye(4) / 4
        expect = max(0.0, np.log((1 + 3 * p) / 2))
        assert log_negativity(rho, g) == pytest.approx(expect, abs=1e-12)


def test_qfi_pure_exact_equals_bound():
    g = Geometry(9, 1, 3, 1, 3)
    rng = np.random.default_rng(1)
    N = g.N
    v = rng.normal(size=2**N) + 1j * rng.normal(size=2**N)
    v /= np.linalg.norm(v)
    rho = np.outer(v, v.conj())
    kk = (0.0, np.pi / 6, np.pi / 2, 1.1)
    assert np.allclose(qfi_exact(rho, g, kk), qfi_bound(rho, g, kk), atol=1e-11)
    # W state, k = 0: F_Q = 4 Var(sum Sz) = 0 (definite Sz)
    # GHZ of N spins, k = 0: f_Q = (4/N) Var(sum sigma^z/2) = N
    ghz = (spin_basis_state([1] * N) + spin_basis_state([-1] * N)) / np.sqrt(2)
    assert qfi_bound(np.outer(ghz, ghz.conj()), g, [0.0])[0] == pytest.approx(N)
    # mixed: 1/2 (|up..><up..| + |dn..><dn..|): bound N, exact 0
    m = 0.5 * (np.outer(spin_basis_state([1] * N), spin_basis_state([1] * N)) +
               np.outer(spin_basis_state([-1] * N), spin_basis_state([-1] * N)))
    assert qfi_bound(m, g, [0.0])[0] == pytest.approx(N)
    assert qfi_exact(m, g, [0.0])[0] == pytest.approx(0.0, abs=1e-12)


def test_gibbs_t0_and_consistency():
    g = Geometry(10, 1, 2, 1, 2)
    members = gibbs_ensemble(g, 0.1, 1.005, 0.01, 0.0)
    assert len(members) == 1
    w, v = members[0]
    assert w == 1.0
    assert np.allclose(v, spin_basis_state(g.reference_config), atol=1e-14)
    assert np.allclose(gibbs_rho(g, 0.1, 1.005, 0.01, 0.0), np.outer(v, v.conj()), atol=1e-12)
    # tiny temperature -> essentially the same state
    m2 = gibbs_ensemble(g, 0.1, 1.005, 0.01, 1.0)
    assert m2[0][0] > 1 - 1e-9 and np.allclose(m2[0][1], v)
    # finite T: ensemble reproduces the dense exp(-beta H)/Z; every member has definite Sz
    E, V, Sz = gibbs_spectrum(g, 0.1, 1.005, 0.01)
    for T in (100.0, 1000.0):
        mem = gibbs_ensemble(g, 0.1, 1.005, 0.01, T)
        rho = sum(wi * np.outer(vi, vi.conj()) for wi, vi in mem)
        assert np.allclose(rho, gibbs_rho(g, 0.1, 1.005, 0.01, T), atol=1e-12)
        assert len(mem) == 2**g.N
    lab = np.array([sum(1 - 2 * ((s >> (g.N - 1 - i)) & 1) for i in range(g.N)) for s in range(2**g.N)])
    for n in range(V.shape[1]):
        assert np.all(np.abs(V[lab != Sz[n], n]) == 0)
    # cutoff drops and reports weight
    mem, disc = gibbs_ensemble(g, 0.1, 1.005, 0.01, 300.0, cutoff=1e-3, return_discarded=True)
    assert 0 < disc < 1e-2 * 2**g.N and len(mem) < 2**g.N
    assert sum(w for w, _ in mem) == pytest.approx(1.0)
    # h_pin = 0, T = 0: degenerate ground manifold averaged (both layers' FM multiplets mix)
    m0 = gibbs_ensemble(g, 0.1, 1.005, 0.0, 0.0)
    assert len(m0) > 1 and np.allclose([w for w, _ in m0], 1 / len(m0))


def test_spectral_function_detailed_balance():
    T, G, wm = 50.0, 1.2e-4, 0.01
    w = np.linspace(1e-5, 0.0099, 50)
    Jp, Jm = bath_spectral_function(w, T, G, wm), bath_spectral_function(-w, T, G, wm)
    assert np.all(Jp > 0) and np.all(Jm > 0)
    assert np.allclose(Jp / Jm, np.exp(-w / (KB * T)), rtol=1e-12)
    assert bath_spectral_function(0.0, T, G, wm) == pytest.approx(G * KB * T / wm)
    assert bath_spectral_function(1e-13, T, G, wm) == pytest.approx(G * KB * T / wm, rel=1e-8)
    assert bath_spectral_function(0.02, T, G, wm) == 0.0
    assert bath_spectral_function(-0.02, T, G, wm) == 0.0


def test_ule_rates_detailed_balance_and_steady_state():
    """The SPEC jump operator gives Pauli rates obeying detailed balance, and its weak-coupling
    steady state (spin-only Lindbladian, H_FM, no pinning) is the Gibbs state at T_bb."""
    g = Geometry(4, 0, 2, 0, 2)
    j, jz, T, wm = 0.1, 1.5, 300.0, 1.0  # broad bath, strong anisotropy: no accidental symmetry
    Hfm = heisenberg_fm(g, j, jz)
    E, V = np.linalg.eigh(Hfm)
    beta = 1 / (KB * T)
    for Gamma in (1e-3,):
        jumps = ule_jump_operators(g, j, jz, T, Gamma, wm)
        assert len(jumps) == g.N
        # rates n -> m: sum_i |<m|L_i|n>|^2 ; detailed balance W_mn e^{-b E_n} = W_nm e^{-b E_m}
        W = sum(np.abs(V.conj().T @ Lj @ V) ** 2 for Lj in jumps)
        p = np.exp(-beta * (E - E[0]))
        assert np.allclose(W * p[None, :], (W * p[None, :]).T, rtol=1e-10, atol=1e-14)
    rho_g = sla.expm(-beta * (Hfm - E[0] * np.eye(len(E))))
    rho_g /= np.trace(rho_g)
    errs = []
    for Gamma in (1e-4, 1e-6):
        S = lindblad_superoperator(Hfm, ule_jump_operators(g, j, jz, T, Gamma, wm))
        rss = steady_state(S)
        assert np.abs(S @ rss.reshape(-1)).max() < 1e-9
        errs.append(np.abs(rss - rho_g).max())
    # deviation is a non-secular O(Gamma / level spacing) correction that vanishes as Gamma -> 0
    assert errs[1] < 1e-5 and errs[1] < 0.1 * errs[0]


def test_ule_t0_only_emission():
    g = Geometry(4, 0, 2, 0, 2)
    jumps = ule_jump_operators(g, 0.1, 1.5, 0.0, 1e-3, 1.0)
    E, V = np.linalg.eigh(heisenberg_fm(g, 0.1, 1.5))
    for Lj in jumps:
        Le = V.conj().T @ Lj @ V
        assert np.abs(Le[E[:, None] > E[None, :] + 1e-12]).max(initial=0) < 1e-15  # no upward jumps


def test_lindblad_evolve_matches_superoperator_and_unitary(monkeypatch):
    g = Geometry(5, 1, 1, 1, 1)  # D = 5*2*4 = 40
    H = hamiltonian(g, j_sd=0.5, j=0.1, jz_ratio=1.005)
    psis, ws = initial_ensemble(g, x0=1.0, dk=0.5)
    rho0 = ensemble_density(psis, ws)
    t = np.array([0.0, 1.0, 3.0])
    # Gamma = 0: same as the unitary ensemble
    jumps0 = ule_jump_operators(g, 0.1, 1.005, 100.0, 0.0, 0.01)
    res0 = lindblad_evolve(H, jumps0, rho0, t, g.L, g.N)
    tracks = [evolve(H, p, t) for p in psis]
    for n in range(len(t)):
        rho_u = reduced_fm([tr[n] for tr in tracks], ws, g.L, g.N)
        assert np.abs(res0["rho_fm"][n] - rho_u).max() < 1e-9
    # with a (strong) bath: compare to exp(S t) of the full superoperator
    jumps = ule_jump_operators(g, 0.1, 1.005, 300.0, 0.05, 1.0)
    res = lindblad_evolve(H, jumps, rho0, t, return_full=True)
    Lfull = [np.kron(np.eye(2 * g.L), Lj) for Lj in jumps]
    S = lindblad_superoperator(H.toarray(), Lfull)
    for n, tt in enumerate(t):
        ref = expm_multiply(S * tt, rho0.reshape(-1)).reshape(rho0.shape)
        assert np.abs(res["rho"][n] - ref).max() < 1e-9
        assert res["trace"][n] == pytest.approx(1.0, abs=1e-10)
    # full-space jump operators give the same result
    res_f = lindblad_evolve(H, Lfull, rho0, t, N=g.N)
    assert np.abs(res_f["rho_fm"] - res["rho_fm"]).max() < 1e-9
    # the jump-by-jump path (used for large N) agrees too
    import reference

    monkeypatch.setattr(reference, "_SUPEROP_MAX_NS", 0)
    res_e = lindblad_evolve(H, jumps, rho0, t)
    assert np.abs(res_e["rho_fm"] - res["rho_fm"]).max() < 1e-9
    # the bath acts: final state differs from the unitary one
    assert np.abs(res["rho_fm"][-1] - res0["rho_fm"][-1]).max() > 1e-4
    o = observables_from_rho(res["rho_fm"][-1], g, K, res["rho_e"][-1])
    assert o["norm"] == pytest.approx(1.0, abs=1e-10)
