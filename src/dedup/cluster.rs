//! Clusters of near-duplicate documents: a union-find whose root is always
//! the document that comes first in pipeline order.

/// Union-find whose root is always the smallest member: the document that
/// comes first in pipeline order.
pub struct UnionFind {
    parent: Vec<u32>,
}

impl UnionFind {
    /// `n` documents, each its own cluster.
    pub fn new(n: usize) -> Self {
        UnionFind {
            parent: (0..n as u32).collect(),
        }
    }

    /// The first document of `x`'s cluster.
    pub fn find(&mut self, mut x: u32) -> u32 {
        while self.parent[x as usize] != x {
            let p = self.parent[x as usize];
            self.parent[x as usize] = self.parent[p as usize];
            x = p;
        }
        x
    }

    /// Joins the clusters of `a` and `b`.
    pub fn union(&mut self, a: u32, b: u32) {
        let (ra, rb) = (self.find(a), self.find(b));
        let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
        self.parent[hi as usize] = lo;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn union_find_roots_at_the_smallest() {
        let mut uf = UnionFind::new(5);
        uf.union(3, 4);
        uf.union(4, 1);
        assert_eq!((uf.find(3), uf.find(4), uf.find(1)), (1, 1, 1));
        assert_eq!(uf.find(2), 2);
    }
}
