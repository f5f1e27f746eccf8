package plugin

import (
	"context"
	"os"
	"path/filepath"
	"time"
)

// watchKubelet: kubelet removes every socket in its plugin directory when it starts and
// then creates kubelet.sock anew, and plugins are expected to register again. A new
// kubelet.sock (another inode), or a plugin socket gone, restarts the servers; a plugin
// whose registration failed (kubelet not up yet) tries again.
func (m *Manager) watchKubelet(ctx context.Context) {
	kubelet := filepath.Join(m.cfg.PluginDir, "kubelet.sock")
	var last os.FileInfo
	ticker := time.NewTicker(m.cfg.KubeletPoll)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		info, err := os.Stat(kubelet)
		if err != nil {
			last = nil
			continue
		}
		renewed := last != nil && !os.SameFile(last, info)
		last = info
		m.checkPlugins(renewed)
	}
}

func (m *Manager) checkPlugins(kubeletRenewed bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range m.plugins {
		_, err := os.Stat(p.socketPath())
		switch {
		case kubeletRenewed || os.IsNotExist(err):
			p.restart()
		case !p.isRegistered():
			go p.register()
		}
	}
}
