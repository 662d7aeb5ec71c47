"""The k-NN KL estimator in Numba: its own array-based k-d tree, not a wrapper of the C++ one.

Same algorithm as ``csrc/core/kdtree.hpp`` and ``knn_kl.hpp`` (split of the widest cell side at
the median or mean of a key sample, by a branch-free partition between two buffers; leaves stored
contiguously in tree order, tight boxes, nearer-child-first search over the
squared box distance, queries in tree order, each starting from a nearby leaf and climbing towards
the root), same duplicate rule (see :mod:`pyvi.divergence`): per point, the k smallest *positive*
squared distances and a count of exact copies. Subtrees are searched with an explicit stack
instead of recursion. In 2-D with k >= 2 the points of each leaf of x's tree search together, as
``csrc/core/group_search.hpp`` does. Inputs arrive already scaled by a power of two.

Copies, as in ``kdtree.hpp``: a node of more than ``leaf_size`` copies of one point is one *uniform*
leaf (``left == UNIFORM``), scanned with one distance, and the queries of a uniform leaf of x are
one query: O(n log n) however many copies. Inputs whose dynamic range makes squared distances
inexact (``robust``, decided by ``pyvi.divergence.knn_scaling``) are compared by that file's log
distances, log s + log(sum_j (v_j / s)^2) / 2 with s = max_j |v_j|, in the same order (the same
bits).

References:
    Wang, Kulkarni & Verdu, "Divergence estimation for multidimensional densities via
    k-nearest-neighbor distances", IEEE Trans. Inf. Theory 55(5), 2009, eq. 5.
"""

import math
from typing import NamedTuple

import numba
import numpy as np

from pyvi._numba.interrupt import run_interruptible

__all__ = ["KDTree", "build_tree", "knn_kl", "magnitudes", "LEAF", "UNIFORM"]

LEAF = -1  # left[] of a leaf
UNIFORM = -2  # left[] of a uniform leaf: more than leaf_size copies of one point


class KDTree(NamedTuple):
    """A k-d tree over points stored in tree order (pynndescent's FlatTree idea: flat arrays, one
    row per node, children by index). Node ``c`` is a leaf when ``left[c] < 0``; its children are
    ``left[c]`` and ``left[c] + 1`` (siblings are (odd, odd + 1)). A leaf holds at most
    ``leaf_size`` points, or is uniform (``left[c] == UNIFORM``): more points, all copies of one."""

    index: np.ndarray  # (n,) int64: original row of each tree row
    begin: np.ndarray  # (nodes,) int64: first tree row of each node
    end: np.ndarray  # (nodes,) int64: one past its last row
    left: np.ndarray  # (nodes,) int64: first child, LEAF or UNIFORM for a leaf
    lo: np.ndarray  # (nodes, d): tight bounding box, low corner
    hi: np.ndarray  # (nodes, d): high corner
    cell_lo: np.ndarray  # (nodes, d): the cell the splits above assign to the node, low corner
    cell_hi: np.ndarray  # (nodes, d): high corner

_BLOCK = 256  # consecutive tree-order queries per prange item
# The search's helpers are inlined in Numba's IR (inline="always"): as separate functions each call
# passes every array as a struct and increments and decrements its reference count, which doubled
# the query time.
_STACK = 160  # > 2 * max depth + 2; the depth is below log2(n) + 1 <= 64
_GROUP = 32  # most queries searched together in 2-D (one leaf of x's tree, or a piece of one)
_GROUP_BLOCK = 16  # groups per prange item


@numba.njit(cache=True, inline="always")
def _swap_rows(points, index, a, b):
    for j in range(points.shape[1]):
        t = points[a, j]
        points[a, j] = points[b, j]
        points[b, j] = t
    t = index[a]
    index[a] = index[b]
    index[b] = t


@numba.njit(cache=True)
def _select(points, index, begin, end, nth, axis):
    """Quickselect (Hoare partition, median-of-three) of row nth by column axis in [begin, end)."""
    while end - begin > 1:
        a = points[begin, axis]
        b = points[begin + (end - begin) // 2, axis]
        c = points[end - 1, axis]
        pivot = max(min(a, b), min(max(a, b), c))
        i = begin
        j = end - 1
        while i <= j:
            while points[i, axis] < pivot:
                i += 1
            while points[j, axis] > pivot:
                j -= 1
            if i <= j:
                _swap_rows(points, index, i, j)
                i += 1
                j -= 1
        if nth <= j:
            end = j + 1
        elif nth >= i:
            begin = i
        else:
            return


_SUBTREE = 8192  # nodes of more points split at the median of a key sample, smaller ones at its mean


@numba.njit(cache=True, inline="always")
def _split_value(src, b, e, axis, sample):
    """Median (nodes of more than _SUBTREE points) or mean (the others) of at most 31 keys of rows
    [b, e) along axis, as csrc/core/kdtree.hpp: the many small nodes are near uniform inside, where
    the mean splits as well as the median at a fraction of the cost."""
    count = e - b
    step = (count + 30) // 31
    keys = 0
    for r in range(b, e, step):
        sample[keys] = src[r, axis]
        keys += 1
    if count > _SUBTREE:
        return np.sort(sample[:keys])[keys // 2]
    total = 0.0
    for i in range(keys):
        total += sample[i]
    return total / keys


@numba.njit(cache=True, inline="always")
def _all_copies(rows, b, e):
    """Whether rows [b, e) all equal row b (==: -0.0 and 0.0 agree, as their distance 0 says)."""
    for r in range(b + 1, e):
        for j in range(rows.shape[1]):
            if rows[r, j] != rows[b, j]:
                return False
    return True


@numba.njit(cache=True, nogil=True)
def build_tree(points, leaf_size):
    """Reorders ``points`` (n, d) in place into tree order and returns its :class:`KDTree`.

    Each split moves a node's rows from one of two buffers into the other, left keys to the front and
    the others to the back, without a branch per row (a quickselect's branches mispredict about half
    the time). Many ties at the split (a side with less than an eighth of the rows) fall back to an
    exact median by quickselect, so every split still cuts the cell, unless every row of the node is
    a copy of one point: then the node is a uniform leaf (a split fails on ties in every such node,
    so distinct points never pay for the check)."""
    n, d = points.shape
    buffers = np.empty((2, n, d))
    buffers[0] = points
    indices = np.empty((2, n), np.int64)
    for r in range(n):
        indices[0, r] = r
    capacity = 2 * n + 1
    begin = np.empty(capacity, np.int64)
    end = np.empty(capacity, np.int64)
    left = np.full(capacity, -1, np.int64)
    parity = np.zeros(capacity, np.int64)  # the buffer holding the node's rows
    cell_lo = np.empty((capacity, d))
    cell_hi = np.empty((capacity, d))
    for j in range(d):
        cell_lo[0, j] = np.inf
        cell_hi[0, j] = -np.inf
    for r in range(n):
        for j in range(d):
            cell_lo[0, j] = min(cell_lo[0, j], points[r, j])
            cell_hi[0, j] = max(cell_hi[0, j], points[r, j])
    begin[0] = 0
    end[0] = n
    count = 1
    pending = np.empty(capacity, np.int64)
    pending[0] = 0
    top = 1
    sample = np.empty(31)
    while top > 0:
        top -= 1
        node = pending[top]
        b = begin[node]
        e = end[node]
        p = parity[node]
        src = buffers[p]
        src_index = indices[p]
        if e - b <= leaf_size:
            if p == 1:  # leaves end in buffer 0
                for r in range(b, e):
                    for j in range(d):
                        buffers[0, r, j] = src[r, j]
                    indices[0, r] = src_index[r]
            continue
        axis = 0
        widest = -1.0
        for j in range(d):
            width = cell_hi[node, j] - cell_lo[node, j]
            if width > widest:
                widest = width
                axis = j
        split = _split_value(src, b, e, axis, sample)
        dst = buffers[1 - p]
        dst_index = indices[1 - p]
        front = b
        back = e
        for r in range(b, e):
            goes_left = src[r, axis] < split
            to = front if goes_left else back - 1
            for j in range(d):
                dst[to, j] = src[r, j]
            dst_index[to] = src_index[r]
            front += goes_left
            back -= not goes_left
        mid = front
        least = max((e - b) // 8, 1)
        if (front - b < least or e - front < least) and _all_copies(src, b, e):
            left[node] = UNIFORM
            if p == 1:  # leaves end in buffer 0
                for r in range(b, e):
                    for j in range(d):
                        buffers[0, r, j] = src[r, j]
                    indices[0, r] = src_index[r]
            continue
        if front - b < least or e - front < least:
            for r in range(b, e):
                for j in range(d):
                    dst[r, j] = src[r, j]
                dst_index[r] = src_index[r]
            mid = b + (e - b) // 2
            _select(dst, dst_index, b, e, mid, axis)
            split = dst[mid, axis]
        child = count
        count += 2
        left[node] = child
        begin[child] = b
        end[child] = mid
        begin[child + 1] = mid
        end[child + 1] = e
        parity[child] = 1 - p
        parity[child + 1] = 1 - p
        for j in range(d):
            cell_lo[child, j] = cell_lo[node, j]
            cell_hi[child, j] = cell_hi[node, j]
            cell_lo[child + 1, j] = cell_lo[node, j]
            cell_hi[child + 1, j] = cell_hi[node, j]
        cell_hi[child, axis] = split
        cell_lo[child + 1, axis] = split
        pending[top] = child + 1
        pending[top + 1] = child
        top += 2
    points[:] = buffers[0]
    index = indices[0].copy()
    # Tight boxes, children (larger ids) before parents.
    lo = np.full((count, d), np.inf)
    hi = np.full((count, d), -np.inf)
    for node in range(count - 1, -1, -1):
        c = left[node]
        if c < 0:  # a leaf (a uniform leaf's box is its point)
            for r in range(begin[node], end[node]):
                for j in range(d):
                    lo[node, j] = min(lo[node, j], points[r, j])
                    hi[node, j] = max(hi[node, j], points[r, j])
        else:
            for j in range(d):
                lo[node, j] = min(lo[c, j], lo[c + 1, j])
                hi[node, j] = max(hi[c, j], hi[c + 1, j])
    return KDTree(index, begin[:count].copy(), end[:count].copy(), left[:count].copy(), lo, hi,
                  cell_lo[:count].copy(), cell_hi[:count].copy())


@numba.njit(cache=True, inline="always")
def _box_distance2(lo, hi, node, q):
    """Squared distance from q to node's box: the box-to-box distance to the point box (q, q)."""
    return _box_box_distance2(lo, hi, node, q, q)


@numba.njit(cache=True, inline="always")
def _positive_sq_distance(points, r, q, d):
    """Squared distance from q to row r, or inf for a copy of q (distance 0: left out, counted)."""
    s = 0.0
    for j in range(d):
        diff = points[r, j] - q[j]
        s += diff * diff
    return np.inf if s == 0.0 else s


@numba.njit(cache=True, inline="always")
def _scan(points, node, first, last, uniform, q, k, best, zeros, nearest):
    """Leaf rows [first, last) into the k best positive squared distances; returns the updated zero
    count and the leaf of the nearest positive-distance point. A ``uniform`` leaf's rows are copies
    of one point: one distance, inserted min(count, k) times (what count insertions leave)."""
    d = q.shape[0]
    if uniform:
        s = _positive_sq_distance(points, first, q, d)
        if s == np.inf:
            return zeros + (last - first), nearest
        nearest = node if s < best[0] else nearest
        for _ in range(min(last - first, k)):
            for i in range(k - 1, 0, -1):
                best[i] = min(best[i], max(best[i - 1], s))
            best[0] = min(best[0], s)
        return zeros, nearest
    if k == 1:  # the common case: the best distance in a register
        b0 = best[0]
        for r in range(first, last):
            s = _positive_sq_distance(points, r, q, d)
            zeros += s == np.inf
            nearest = node if s < b0 else nearest
            b0 = min(b0, s)
        best[0] = b0
        return zeros, nearest
    for r in range(first, last):
        s = _positive_sq_distance(points, r, q, d)
        zeros += s == np.inf
        nearest = node if s < best[0] else nearest
        # Branch-free sorted insertion: b[i] = min(b[i], max(b[i - 1], s)) from the top down leaves
        # the list unchanged when s >= b[k - 1].
        for i in range(k - 1, 0, -1):
            best[i] = min(best[i], max(best[i - 1], s))
        best[0] = min(best[0], s)
    return zeros, nearest


@numba.njit(cache=True, inline="always")
def _descend(points, begin, end, left, lo, hi, q, k, best, root, root_dist, stack_node, stack_dist, zeros,
             nearest):
    """Searches the subtree of ``root`` (box distance root_dist) depth first, nearer child first."""
    stack_node[0] = root
    stack_dist[0] = root_dist
    top = 1
    while top > 0:
        top -= 1
        node = stack_node[top]
        if stack_dist[top] >= best[k - 1]:
            continue
        c = left[node]
        if c < 0:
            zeros, nearest = _scan(points, node, begin[node], end[node], c == UNIFORM, q, k, best, zeros, nearest)
            continue
        dl = _box_distance2(lo, hi, c, q)
        dr = _box_distance2(lo, hi, c + 1, q)
        # Push the farther child first so the nearer one is searched first.
        if dl <= dr:
            near, far, d_near, d_far = c, c + 1, dl, dr
        else:
            near, far, d_near, d_far = c + 1, c, dr, dl
        if d_far < best[k - 1]:
            stack_node[top] = far
            stack_dist[top] = d_far
            top += 1
        if d_near < best[k - 1]:
            stack_node[top] = near
            stack_dist[top] = d_near
            top += 1
    return zeros, nearest


@numba.njit(cache=True, inline="always")
def _ball_inside_cell(cell_lo, cell_hi, node, q, r2):
    """Whether the ball around q of squared radius r2 lies inside node's cell, so that no point
    outside the node is closer (a point beyond a face is at least as far as the face); the margin
    covers the rounding of the face distances, so it errs only towards False."""
    room = np.inf
    for j in range(q.shape[0]):
        room = min(room, min(q[j] - cell_lo[node, j], cell_hi[node, j] - q[j]))
    return room >= 0.0 and room * room >= r2 * (1.0 + 1e-9)


@numba.njit(cache=True, inline="always")
def _search(points, begin, end, left, parent, lo, hi, cell_lo, cell_hi, q, k, best, start, stack_node,
            stack_dist):
    """k smallest positive squared distances from q into best (ascending, inf if fewer); returns the
    number of points at squared distance 0 and the leaf of the nearest positive-distance point.

    From leaf ``start`` (-1: from the root) the search climbs towards the root and searches each
    sibling subtree on the way that the box distance does not prune: the leaf and those siblings
    cover the tree, so the result is exact for any start, and a start near q (its own leaf, or the
    previous nearby query's nearest leaf) saves the descent. The climb stops once the k-NN ball
    lies inside the current node's cell.
    """
    for i in range(k):
        best[i] = np.inf
    if start < 0:
        return _descend(points, begin, end, left, lo, hi, q, k, best, 0, 0.0, stack_node, stack_dist, 0, -1)
    zeros, nearest = _scan(points, start, begin[start], end[start], left[start] == UNIFORM, q, k, best, 0, start)
    node = start
    while node != 0:
        if _ball_inside_cell(cell_lo, cell_hi, node, q, best[k - 1]):
            break
        sibling = node + 1 if node & 1 else node - 1
        dist = _box_distance2(lo, hi, sibling, q)
        if dist < best[k - 1]:
            zeros, nearest = _descend(points, begin, end, left, lo, hi, q, k, best, sibling, dist, stack_node,
                                      stack_dist, zeros, nearest)
        node = parent[node]
    return zeros, nearest


@numba.njit(cache=True, inline="always")
def _box_box_distance2(lo, hi, node, group_lo, group_hi):
    """Squared distance from node's box to the box (group_lo, group_hi); 0 when they meet. Never more
    than _box_distance2 for a query inside the group's box (rounding is monotone)."""
    s = 0.0
    for j in range(group_lo.shape[0]):
        # relu(t) = (t + |t|) / 2, exact and branch free (below, inside or above is unpredictable)
        below = lo[node, j] - group_hi[j]
        above = group_lo[j] - hi[node, j]
        gap = 0.5 * ((below + abs(below)) + (above + abs(above)))
        s += gap * gap
    return s


@numba.njit(cache=True, inline="always")
def _group_search(points, begin, end, left, lo, hi, queries, first, last, group_lo, group_hi, k, best, zeros,
                  kth, stack_node, stack_dist):
    """best[i, :k] and zeros[i] as _search gives them, for each query row first + i < last of
    ``queries``, all inside the box (group_lo, group_hi): the points of one leaf of x's tree.

    As csrc/core/group_search.hpp: one walk of the tree for the group, pruning a node whose box is at
    least as far from the group's box as the largest k-th distance of the group, and merging a leaf
    reached into each query's list when the query's own box distance to it is below its k-th
    distance. Same lists and zero counts as the one-query search (rounding is monotone, so pruning
    drops only points that cannot enter a list); the walk is shared by the group's queries.
    """
    g = last - first
    for i in range(g):
        for j in range(k):
            best[i, j] = np.inf
        zeros[i] = 0
        kth[i] = np.inf
    bound = np.inf
    stack_node[0] = 0
    stack_dist[0] = 0.0
    top = 1
    while top > 0:
        top -= 1
        node = stack_node[top]
        if stack_dist[top] >= bound:
            continue
        c = left[node]
        if c < 0:
            bound = 0.0
            for i in range(g):
                q = queries[first + i]
                if _box_distance2(lo, hi, node, q) < kth[i]:
                    zeros[i], _ = _scan(points, node, begin[node], end[node], c == UNIFORM, q, k, best[i], zeros[i],
                                        node)
                    kth[i] = best[i, k - 1]
                bound = max(bound, kth[i])
            continue
        dl = _box_box_distance2(lo, hi, c, group_lo, group_hi)
        dr = _box_box_distance2(lo, hi, c + 1, group_lo, group_hi)
        if dl <= dr:
            near, far, d_near, d_far = c, c + 1, dl, dr
        else:
            near, far, d_near, d_far = c + 1, c, dr, dl
        if d_far < bound:
            stack_node[top] = far
            stack_dist[top] = d_far
            top += 1
        if d_near < bound:
            stack_node[top] = near
            stack_dist[top] = d_near
            top += 1


@numba.njit(cache=True)
def _groups(left, begin, end):
    """x's leaves in row order, cut into groups of at most _GROUP rows: (first, last, leaf,
    copies_end) arrays; a uniform leaf is one group of one query, rows [last, copies_end) its copies."""
    leaves = np.flatnonzero(left < 0)
    leaves = leaves[np.argsort(begin[leaves])]
    count = 0
    for leaf in leaves:
        count += 1 if left[leaf] == UNIFORM else (end[leaf] - begin[leaf] + _GROUP - 1) // _GROUP
    first = np.empty(count, np.int64)
    last = np.empty(count, np.int64)
    owner = np.empty(count, np.int64)
    copies_end = np.empty(count, np.int64)
    g = 0
    for leaf in leaves:
        step = end[leaf] - begin[leaf] if left[leaf] == UNIFORM else _GROUP
        for r in range(begin[leaf], end[leaf], step):
            first[g] = r
            last[g] = r + 1 if left[leaf] == UNIFORM else min(end[leaf], r + _GROUP)
            copies_end[g] = min(end[leaf], r + step)
            owner[g] = leaf
            g += 1
    return first, last, owner, copies_end


@numba.njit(cache=True)
def _parents(left):
    parent = np.full(left.shape[0], -1, np.int64)
    for node in range(left.shape[0]):
        if left[node] >= 0:
            parent[left[node]] = node
            parent[left[node] + 1] = node
    return parent


@numba.njit(cache=True, inline="always")
def _repeats_previous(left, begin, leaf, r, start):
    """Whether x's tree row r (in ``leaf``) is a copy of row r - 1 whose results this block has: rows
    of a uniform leaf are copies of one point, so their queries are one query."""
    return r > start and r > begin[leaf] and left[leaf] == UNIFORM


@numba.njit(cache=True, inline="always")
def _leaf_of(left, end, r):
    node = 0
    while left[node] >= 0:
        c = left[node]
        node = c + 1 if r >= end[c] else c
    return node


@numba.njit(cache=True)
def _copy_tree(tree, out, count):
    """Copies build_tree's tree into the first rows of ``out`` (a KDTree of capacity rows)."""
    out.index[: tree.index.shape[0]] = tree.index
    out.begin[: tree.begin.shape[0]] = tree.begin
    out.end[: tree.end.shape[0]] = tree.end
    out.left[: tree.left.shape[0]] = tree.left
    out.lo[: tree.lo.shape[0]] = tree.lo
    out.hi[: tree.hi.shape[0]] = tree.hi
    out.cell_lo[: tree.cell_lo.shape[0]] = tree.cell_lo
    out.cell_hi[: tree.cell_hi.shape[0]] = tree.cell_hi
    count[0] = tree.begin.shape[0]


@numba.njit(cache=True)
def _empty_tree_arrays(n, d):
    """Uninitialised arrays for build_tree's KDTree on n points (in its field order), the node
    arrays with room for the most nodes a tree can have (2n + 1). The caller makes the KDTree: a
    namedtuple returned by a call and then used in a prange body fails Numba's parfor lowering
    (NameError, numba 0.68), one built in place does not."""
    nodes = 2 * n + 1
    return (np.empty(n, np.int64), np.empty(nodes, np.int64), np.empty(nodes, np.int64), np.empty(nodes, np.int64),
            np.empty((nodes, d)), np.empty((nodes, d)), np.empty((nodes, d)), np.empty((nodes, d)))


@numba.njit(cache=True, parallel=True, nogil=True)
def _trees(x, y, leaf_size):
    """Both trees, on copies (a build reorders its points), built side by side when numba has two
    threads: the two builds are ~40% of a 2-D k = 1 estimate at 1e5, a serial stage otherwise. A
    prange body cannot return a tree, so each build's arrays are copied into arrays made here
    (a few ms at 1e6, against ~80 ms per build)."""
    px = x.copy()
    py = y.copy()
    tx = KDTree(*_empty_tree_arrays(px.shape[0], px.shape[1]))
    ty = KDTree(*_empty_tree_arrays(py.shape[0], py.shape[1]))
    counts = np.empty(2, np.int64)
    for t in numba.prange(2):
        if t == 0:
            _copy_tree(build_tree(px, leaf_size), tx, counts[0:1])
        else:
            _copy_tree(build_tree(py, leaf_size), ty, counts[1:2])
    return px, _first_nodes(tx, counts[0]), py, _first_nodes(ty, counts[1])


@numba.njit(cache=True)
def _first_nodes(tree, count):
    """The tree with its node arrays cut to the first ``count`` nodes (index is per point: whole)."""
    return KDTree(tree.index, tree.begin[:count], tree.end[:count], tree.left[:count], tree.lo[:count],
                  tree.hi[:count], tree.cell_lo[:count], tree.cell_hi[:count])


@numba.njit(cache=True, inline="always")
def _query_block(px, tree_x, block, points, tree, parent, own, robust, k, stop, distance, copies):
    """One block of queries, the walk that the rho and the nu passes of _distances and
    _robust_distances share: for x's tree rows r of block ``block`` (_BLOCK consecutive rows), the
    k-th distance from x_r to the points of ``tree`` (x's own tree when ``own``: rho; y's: nu) into
    ``distance`` and the number of copies of x_r among them (x_r itself not counted) into
    ``copies``, both at x_r's original row.

    Queries run in tree order, so consecutive queries are near each other: for rho each starts from
    its own leaf, for nu from where the previous query found its nearest point (``robust``: the
    log-distance search, from the root; ``parent`` is then unused). The rows of a uniform leaf of x
    are copies of one point: one query, whose results the others copy. A set ``stop[0]`` (Ctrl-C,
    pyvi._numba.interrupt) skips what is left.
    """
    best = np.empty(k)
    stack_node = np.empty(_STACK, np.int64)
    stack_dist = np.empty(_STACK)
    index, begin_x, end_x, left_x = tree_x.index, tree_x.begin, tree_x.end, tree_x.left
    # The searched tree's arrays as locals, read once: not from the struct at every query.
    begin, end, left, lo, hi = tree.begin, tree.end, tree.left, tree.lo, tree.hi
    cell_lo, cell_hi = tree.cell_lo, tree.cell_hi
    nearest = -1
    leaf = -1
    leaf_end = 0
    start = block * _BLOCK
    for r in range(start, min(px.shape[0], start + _BLOCK)):
        if stop[0]:
            break
        if r >= leaf_end:
            leaf = _leaf_of(left_x, end_x, r)
            leaf_end = end_x[leaf]
        i = index[r]
        if _repeats_previous(left_x, begin_x, leaf, r, start):
            distance[i] = distance[index[r - 1]]
            copies[i] = copies[index[r - 1]]
            continue
        if robust:
            zeros = _robust_search(points, begin, end, left, lo, hi, px[r], k, best, stack_node, stack_dist)
        else:
            zeros, nearest = _search(points, begin, end, left, parent, lo, hi, cell_lo, cell_hi, px[r], k, best,
                                     leaf if own else nearest, stack_node, stack_dist)
        distance[i] = best[k - 1]
        copies[i] = zeros - 1 if own else zeros  # x's own search counts x_r itself


@numba.njit(cache=True, parallel=True, nogil=True)
def _distances(px, tree_x, py, tree_y, k, stop):
    n = px.shape[0]
    ix, bx, ex, lx, lox, hix = tree_x.index, tree_x.begin, tree_x.end, tree_x.left, tree_x.lo, tree_x.hi
    by, ey, ly, loy, hiy = tree_y.begin, tree_y.end, tree_y.left, tree_y.lo, tree_y.hi
    parent_x = _parents(lx)
    parent_y = _parents(ly)
    rho2 = np.empty(n)
    nu2 = np.empty(n)
    copies_x = np.empty(n, np.int64)
    copies_y = np.empty(n, np.int64)
    # 2-D, k >= 2: the points of each leaf of x's tree search together (k = 5: 7% faster at 1e5,
    # 11% at 1e6; k = 1, whose one-query scan keeps its distance in a register, gains nothing).
    if px.shape[1] == 2 and k >= 2:
        first, last, owner, copies_end = _groups(lx, bx, ex)
        group_blocks = (first.shape[0] + _GROUP_BLOCK - 1) // _GROUP_BLOCK
        for item in numba.prange(2 * group_blocks):
            own = item < group_blocks
            block = item if own else item - group_blocks
            best = np.empty((_GROUP, k))
            zeros = np.empty(_GROUP, np.int64)
            kth = np.empty(_GROUP)
            stack_node = np.empty(_STACK, np.int64)
            stack_dist = np.empty(_STACK)
            for g in range(block * _GROUP_BLOCK, min(first.shape[0], (block + 1) * _GROUP_BLOCK)):
                if stop[0]:  # Ctrl-C (pyvi._numba.interrupt): skip what is left
                    break
                leaf = owner[g]
                if own:
                    _group_search(px, bx, ex, lx, lox, hix, px, first[g], last[g], lox[leaf], hix[leaf], k, best,
                                  zeros, kth, stack_node, stack_dist)
                else:
                    _group_search(py, by, ey, ly, loy, hiy, px, first[g], last[g], lox[leaf], hix[leaf], k, best,
                                  zeros, kth, stack_node, stack_dist)
                for r in range(first[g], copies_end[g]):
                    i = ix[r]
                    row = min(r, last[g] - 1) - first[g]  # rows past last: copies of the group's one query
                    if own:
                        rho2[i] = best[row, k - 1]
                        copies_x[i] = zeros[row] - 1  # zeros counts x_i itself
                    else:
                        nu2[i] = best[row, k - 1]
                        copies_y[i] = zeros[row]
        return rho2, nu2, copies_x, copies_y
    blocks = (n + _BLOCK - 1) // _BLOCK
    for block in numba.prange(blocks):
        _query_block(px, tree_x, block, px, tree_x, parent_x, True, False, k, stop, rho2, copies_x)
    for block in numba.prange(blocks):
        _query_block(px, tree_x, block, py, tree_y, parent_y, False, False, k, stop, nu2, copies_y)
    return rho2, nu2, copies_x, copies_y


_LOG2 = 0.6931471805599453


@numba.njit(cache=True, inline="always")
def _robust_log_distance(points, r, q):
    """csrc/core/robust_search.hpp's log distance from row r to q (-inf for a copy), in its order:
    log s + log(sum_j (v_j / s)^2) / 2, s = max_j |v_j|, from the halves when a difference overflows."""
    d = q.shape[0]
    s = 0.0
    for j in range(d):
        s = max(s, abs(points[r, j] - q[j]))
    if s == 0.0:
        return -np.inf
    halve = np.isinf(s)
    if halve:
        s = 0.0
        for j in range(d):
            s = max(s, abs(points[r, j] * 0.5 - q[j] * 0.5))
    t = 0.0
    for j in range(d):
        v = ((points[r, j] * 0.5 - q[j] * 0.5) if halve else (points[r, j] - q[j])) / s
        t += v * v
    return (math.log(s) + _LOG2 if halve else math.log(s)) + 0.5 * math.log(t)


@numba.njit(cache=True, inline="always")
def _robust_gap(lo, hi, node, q, j, halve):
    if halve:
        return max(max(lo[node, j] * 0.5 - q[j] * 0.5, q[j] * 0.5 - hi[node, j] * 0.5), 0.0)
    return max(max(lo[node, j] - q[j], q[j] - hi[node, j]), 0.0)


@numba.njit(cache=True, inline="always")
def _robust_log_box_distance(lo, hi, node, q):
    """The same for the gaps between q and node's box (-inf inside)."""
    d = q.shape[0]
    s = 0.0
    for j in range(d):
        s = max(s, abs(_robust_gap(lo, hi, node, q, j, False)))
    if s == 0.0:
        return -np.inf
    halve = np.isinf(s)
    if halve:
        s = 0.0
        for j in range(d):
            s = max(s, abs(_robust_gap(lo, hi, node, q, j, True)))
    t = 0.0
    for j in range(d):
        v = _robust_gap(lo, hi, node, q, j, halve) / s
        t += v * v
    return (math.log(s) + _LOG2 if halve else math.log(s)) + 0.5 * math.log(t)


@numba.njit(cache=True, inline="always")
def _robust_search(points, begin, end, left, lo, hi, q, k, best, stack_node, stack_dist):
    """The k smallest log distances from q of the points not equal to it (ascending, inf if fewer)
    into best; returns the number of copies of q. From the root, nearer child first; a node is
    pruned only when its box's log distance exceeds the k-th one by more than their rounding
    (robust_search.hpp's robust_slack)."""
    slack = (4096 + 4 * q.shape[0] + 16) * np.finfo(np.float64).eps
    for i in range(k):
        best[i] = np.inf
    zeros = 0
    stack_node[0] = 0
    stack_dist[0] = 0.0
    top = 1
    while top > 0:
        top -= 1
        node = stack_node[top]
        if stack_dist[top] > best[k - 1] + slack:
            continue
        c = left[node]
        if c < 0:
            count = end[node] - begin[node]
            for r in range(begin[node], begin[node] + 1 if c == UNIFORM else end[node]):
                s = _robust_log_distance(points, r, q)
                if s == -np.inf:
                    zeros += count if c == UNIFORM else 1
                    continue
                for _ in range(min(count, k) if c == UNIFORM else 1):
                    for i in range(k - 1, 0, -1):
                        best[i] = min(best[i], max(best[i - 1], s))
                    best[0] = min(best[0], s)
            continue
        dl = _robust_log_box_distance(lo, hi, c, q)
        dr = _robust_log_box_distance(lo, hi, c + 1, q)
        if dr < dl:
            near, far, d_near, d_far = c + 1, c, dr, dl
        else:
            near, far, d_near, d_far = c, c + 1, dl, dr
        stack_node[top] = far
        stack_dist[top] = d_far
        stack_node[top + 1] = near
        stack_dist[top + 1] = d_near
        top += 2
    return zeros


@numba.njit(cache=True, parallel=True, nogil=True)
def _robust_distances(px, tree_x, py, tree_y, k, stop):
    """_distances' outputs from the robust search (log distances), as ``run_robust_queries`` in
    csrc/core/knn_kl.hpp."""
    n = px.shape[0]
    rho = np.empty(n)
    nu = np.empty(n)
    copies_x = np.empty(n, np.int64)
    copies_y = np.empty(n, np.int64)
    blocks = (n + _BLOCK - 1) // _BLOCK
    for block in numba.prange(blocks):
        _query_block(px, tree_x, block, px, tree_x, tree_x.left, True, True, k, stop, rho, copies_x)
    for block in numba.prange(blocks):
        _query_block(px, tree_x, block, py, tree_y, tree_y.left, False, True, k, stop, nu, copies_y)
    return rho, nu, copies_x, copies_y


@numba.njit(cache=True)
def _terms(rho2, nu2, copies_x, copies_y, d, m, log_distances):
    """t_i = d/2 (log nu2 - log rho2) + log((m - w_i)/m) - log((n - 1 - z_i)/(n - 1)), and their sum
    (``log_distances``: rho2, nu2 hold log rho, log nu: d (log nu - log rho))."""
    n = rho2.shape[0]
    terms = np.empty(n)
    half_d = 0.5 * d
    for i in range(n):
        if log_distances:
            t = d * (nu2[i] - rho2[i])
        else:
            t = half_d * (math.log(nu2[i]) - math.log(rho2[i]))
        if copies_y[i] != 0:
            t += math.log1p(-copies_y[i] / m)
        if copies_x[i] != 0:
            t -= math.log1p(-copies_x[i] / (n - 1))
        terms[i] = t
    # Neumaier-compensated sum in index order.
    total = 0.0
    carry = 0.0
    for i in range(n):
        v = terms[i]
        s = total + v
        if abs(total) >= abs(v):
            carry += (total - s) + v
        else:
            carry += (v - s) + total
        total = s
    return terms, total + carry


@numba.njit(cache=True)
def magnitudes(x, y):
    """The largest and the smallest nonzero |value| of x and y (inf: none), in one pass."""
    largest = 0.0
    smallest = np.inf
    for a in (x, y):
        for r in range(a.shape[0]):
            for j in range(a.shape[1]):
                v = abs(a[r, j])
                largest = max(largest, v)
                if v > 0.0:
                    smallest = min(smallest, v)
    return largest, smallest


def knn_kl(x: np.ndarray, y: np.ndarray, k: int, leaf_size: int = 12, robust: bool = False):
    """Per-point squared distances (``robust``: log distances), copy counts, terms and the sum of
    terms, for x and y already validated and scaled: ``(rho2, nu2, copies_x, copies_y, terms,
    total)``. A +inf in rho2 or nu2 marks a point with fewer than k distinct neighbours (the caller
    raises). Ctrl-C stops the search (pyvi._numba.interrupt) unless the call is small."""
    stop = np.zeros(1, np.bool_)
    return run_interruptible(lambda: _knn_kl(x, y, k, leaf_size, robust, stop), stop,
                             small=(x.shape[0] + y.shape[0]) * x.shape[1] < 2**16)


def _knn_kl(x: np.ndarray, y: np.ndarray, k: int, leaf_size: int, robust: bool, stop: np.ndarray):
    if numba.get_num_threads() > 1:
        trees = _trees(x, y, leaf_size)
    else:  # one thread: the builds run one after the other anyway, so skip _trees' copies
        px, py = x.copy(), y.copy()
        trees = (px, build_tree(px, leaf_size), py, build_tree(py, leaf_size))
    rho2, nu2, copies_x, copies_y = (_robust_distances if robust else _distances)(*trees, k, stop)
    if stop[0]:
        return None  # interrupted: the caller re-raises
    if np.isinf(rho2).any() or np.isinf(nu2).any():
        return rho2, nu2, copies_x, copies_y, None, None
    terms, total = _terms(rho2, nu2, copies_x, copies_y, x.shape[1], y.shape[0], robust)
    return rho2, nu2, copies_x, copies_y, terms, total
